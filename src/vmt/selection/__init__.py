"""Choosing what to label next: rank a pool of predicted rows (pure numpy, no I/O).

``rank_pool(table, strategy=..., options=...)`` -> ``Ranking`` (rows with data row id, global key,
score, rank and a readable reason). Strategies: ``least_confidence``, ``margin``, ``entropy``,
``rare_class``, ``random`` and ``diverse`` (k-center greedy over image embeddings, on the top
candidates of an uncertainty strategy). Ties are broken by data row id, so the same inputs
always give the same ranking.

Import from the modules (``vmt.selection.ranking``): this package itself stays light, so the
CLI can list the strategies (``vmt.selection.strategies``, their registry) without loading numpy.
"""
