"""Writing a run's splits back to its Labelbox model run (``assign_data_rows_to_split``).

When a run assigns splits itself (rows UNASSIGNED in Labelbox), Labelbox should show the splits
the model was trained and evaluated on, and a later run of the same model run should reuse them
(``LabelboxSource`` reads ``dataSplit`` of rows whose export carries no split). One call per
split and part of at most ``ASSIGN_ROWS`` rows; assigning a row the split it has is harmless, so a
retried write-back needs no bookkeeping. ``assign_data_rows_to_split`` is experimental in the
SDK: the client is built with ``enable_experimental=True``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from functools import partial

from vmt.backends.labelbox.connection import LabelboxConnection
from vmt.domain import Sample, Split

ASSIGN_ROWS = 10_000
LABELBOX_SPLITS = {
    Split.TRAINING: "TRAINING",
    Split.VALIDATION: "VALIDATION",
    Split.TEST: "TEST",
}


def write_back_splits(
    connection: LabelboxConnection,
    samples: Iterable[Sample],
    *,
    assigned: Collection[str],
    run_id: str | None = None,
) -> dict[str, int]:
    """Assign each sample whose data row id is in ``assigned`` (the rows the run gave a split)
    its split in the model run. Returns rows written per Labelbox split."""
    by_split: dict[str, list[str]] = defaultdict(list)
    for sample in samples:
        name = LABELBOX_SPLITS.get(sample.split)
        if name is not None and sample.data_row_id in assigned:
            by_split[name].append(sample.data_row_id)
    model_run = connection.model_run()
    for name, ids in sorted(by_split.items()):
        for start in range(0, len(ids), ASSIGN_ROWS):
            part = ids[start : start + ASSIGN_ROWS]
            connection.call(
                partial(model_run.assign_data_rows_to_split, data_row_ids=part, split=name),
                f"split write-back ({len(part)} rows to {name})",
                run_id=run_id,
            )
    return {name: len(ids) for name, ids in sorted(by_split.items())}
