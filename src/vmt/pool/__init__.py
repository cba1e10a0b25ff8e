"""After a run: its model on a pool of unlabelled rows, and what the loop does with them.

A pool's predictions are kept in the run folder (``pools/<key>/``) so ``select`` and
``prelabel`` reuse them instead of predicting twice. Pure ranking lives in ``vmt.selection``;
Labelbox calls in ``vmt.backends.labelbox``.
"""
