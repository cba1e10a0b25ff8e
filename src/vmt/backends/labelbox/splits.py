"""The splits a run gave rows, written back to its Labelbox model run.

When a run assigns splits itself (rows UNASSIGNED in Labelbox, ``vmt run --unassigned auto``),
Labelbox should show the splits the model was trained and evaluated on, and a later run of the
same model run should reuse them (``LabelboxSource`` reads ``dataSplit`` of rows whose export
carries no split). One call per split and part of at most ``ASSIGN_ROWS`` rows; assigning a row
the split it has is harmless, so a retried write-back needs no bookkeeping.
``assign_data_rows_to_split`` is experimental in the SDK: the client is built with
``enable_experimental=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from vmt.backends.labelbox.connection import LabelboxConnection
from vmt.domain import Split

ASSIGN_ROWS = 10_000
LABELBOX_SPLITS = {
    Split.TRAINING: "TRAINING",
    Split.VALIDATION: "VALIDATION",
    Split.TEST: "TEST",
}


def write_back_splits(
    connection: LabelboxConnection,
    rows_of: Callable[[Split], Iterable[str]],
    *,
    run_id: str | None = None,
) -> dict[str, int]:
    """Assign the data rows ``rows_of(split)`` (streamed, any number) their split in the model
    run, for each of training, validation and test. Returns rows written per Labelbox split
    (splits without rows left out)."""
    model_run = connection.model_run()
    written: dict[str, int] = {}
    for split, name in LABELBOX_SPLITS.items():
        part: list[str] = []
        for data_row_id in rows_of(split):
            part.append(data_row_id)
            if len(part) == ASSIGN_ROWS:
                _assign(connection, model_run, part, name, run_id)
                written[name] = written.get(name, 0) + len(part)
                part = []
        if part:
            _assign(connection, model_run, part, name, run_id)
            written[name] = written.get(name, 0) + len(part)
    return written


def _assign(
    connection: LabelboxConnection, model_run: Any, ids: list[str], name: str, run_id: str | None
) -> None:
    connection.call(
        partial(model_run.assign_data_rows_to_split, data_row_ids=ids, split=name),
        f"split write-back ({len(ids)} rows to {name})",
        run_id=run_id,
    )
