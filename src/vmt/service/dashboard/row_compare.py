"""The same rows in two runs side by side: the rows whose error count changed from the
baseline run to the other (what the new model fixed and what it broke), each at its run's own
confidence, most changed first."""

from __future__ import annotations

from dataclasses import dataclass

from vmt.errors import InputError
from vmt.pipeline.store import RunStore
from vmt.service.dashboard.row_pages import Tile, tile_of
from vmt.service.dashboard.run_rows import RunRows

PAIRS_PER_PAGE = 20
CHANGES = ("all", "fixed", "broke")


@dataclass(frozen=True, slots=True)
class Pair:
    data_row_id: str
    before: Tile
    after: Tile

    @property
    def change(self) -> int:
        """Errors in the other run less errors in the baseline (negative: fixed)."""
        return self.after.row.errors - self.before.row.errors


@dataclass(frozen=True, slots=True)
class RowComparison:
    baseline: str
    other: str
    change: str
    pairs: list[Pair]
    fixed: int
    broke: int
    page: int
    pages: int
    total: int


def _wanted(change: str, delta: int) -> bool:
    return change == "all" or (delta < 0) == (change == "fixed")


def compare_rows(
    store: RunStore,
    rows: RunRows,
    run_ids: list[str],
    *,
    change: str = "all",
    data_row: str | None = None,
    page: int = 1,
    size: int = PAIRS_PER_PAGE,
) -> RowComparison:
    """Rows both runs evaluated whose errors differ (``fixed``: fewer in the other run,
    ``broke``: more), or the one ``data_row``. Raises ``InputError`` (not two runs, unknown
    change), ``UnknownRunError``, ``NoRowsError``."""
    if len(run_ids) != 2:
        raise InputError("compare rows of exactly two runs: ?run=BASELINE&run=OTHER")
    if change not in CHANGES:
        raise InputError(f"unknown change {change!r}")
    baseline, other = run_ids
    before_table, after_table = rows.table(baseline), rows.table(other)
    before, after = before_table.error_counts(), after_table.error_counts()
    delta = {i: after[i] - n for i, n in before.items() if i in after and after[i] != n}
    fixed = sum(1 for d in delta.values() if d < 0)
    broke = len(delta) - fixed
    if data_row is not None:
        chosen = [data_row] if data_row in before and data_row in after else []
    else:
        chosen = sorted(
            (i for i, d in delta.items() if _wanted(change, d)), key=lambda i: (-abs(delta[i]), i)
        )
    total = len(chosen)
    pages = max(1, -(-total // size))
    page = max(1, min(page, pages))
    shown = chosen[(page - 1) * size : page * size]
    pairs = [
        Pair(
            i,
            tile_of(store, rows, before_table, baseline, i),
            tile_of(store, rows, after_table, other, i),
        )
        for i in shown
    ]
    return RowComparison(baseline, other, change, pairs, fixed, broke, page, pages, total)
