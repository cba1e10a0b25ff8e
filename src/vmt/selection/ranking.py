"""Ranking a pool for labelling: one strategy's scores -> ordered rows with reasons.

Order: score descending, ties by data row id ascending; ``rank`` starts at 1. ``diverse`` ranks
differently: it takes the top ``candidate_factor * budget`` rows of an uncertainty strategy
and thins them to ``budget`` by k-center greedy on image embeddings; its rows come in pick order
and carry the uncertainty score. Without embeddings it says so (``Ranking.notes``) and falls
back to the uncertainty order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from vmt.detection_table import DetectionTable
from vmt.errors import InputError
from vmt.selection import scores as S
from vmt.selection.kcenter import FloatArray, IntArray, k_center_greedy
from vmt.selection.strategies import SelectionOptions, strategy_spec

__all__ = ["PoolEmbeddings", "RankedRow", "Ranking", "SelectionOptions", "rank_pool"]


@dataclass(frozen=True, slots=True)
class RankedRow:
    data_row_id: str
    global_key: str | None
    score: float
    rank: int
    """1 = label first."""
    reason: str


@dataclass(frozen=True)
class Ranking:
    strategy: str
    rows: tuple[RankedRow, ...]
    pool_rows: int
    """Rows the pool had (``rows`` holds at most ``budget`` of them)."""
    notes: tuple[str, ...] = ()
    """What the user should know (e.g. a fallback), one sentence each."""


@dataclass(frozen=True)
class PoolEmbeddings:
    """Image embeddings for ``diverse``: one row per pool row (table order), and optionally
    the labelled (training) images', which count as already chosen."""

    pool: FloatArray
    labelled: FloatArray | None = None
    present: np.ndarray | None = field(default=None)
    """``(R,)`` bool: which pool rows have an embedding (None: all)."""


def row_scores(table: DetectionTable, strategy: str, options: SelectionOptions) -> S.RowScores:
    """The scores of one registered strategy that scores rows itself (not ``diverse``).
    Raises ``InputError`` for an unknown strategy or one missing an input it needs."""
    spec = strategy_spec(strategy)
    if spec.score is None:
        raise InputError(f"{strategy} ranks the candidates of another strategy; it has no scores")
    return spec.score(table, options)


def order_by_score(score: FloatArray, data_row_ids: Sequence[str]) -> IntArray:
    """Row indices by score descending, ties by data row id ascending."""
    ids = np.asarray(data_row_ids, dtype=str) if data_row_ids else np.empty(0, dtype=str)
    return np.lexsort((ids, -score)).astype(np.int64)


def rank_pool(
    table: DetectionTable,
    *,
    strategy: str,
    budget: int | None = None,
    options: SelectionOptions | None = None,
    global_keys: Mapping[str, str] | None = None,
    embeddings: PoolEmbeddings | None = None,
) -> Ranking:
    """Rank every row of ``table`` (or the top ``budget``) for labelling.

    ``table`` has one row per pool data row (``DetectionTable.data_row_ids``), with or without
    detections. Raises ``InputError`` for an unknown strategy, a negative budget, ``diverse``
    without a budget, or ``rare_class`` without training counts.
    """
    options = options or SelectionOptions()
    keys = global_keys or {}
    ids = table.data_row_ids
    if budget is not None and budget < 0:
        raise InputError(f"--budget must be >= 0, got {budget}")
    n = len(ids) if budget is None else min(budget, len(ids))
    if strategy_spec(strategy).score is not None:
        scored = row_scores(table, strategy, options)
        order = order_by_score(scored.score, ids)[:n]
        rows = _rows(order, scored, ids, keys)
        return Ranking(strategy, rows, len(ids))
    if budget is None:
        raise InputError("diverse needs --budget N (it picks N rows that differ from each other)")
    base = row_scores(table, options.base, options)
    candidates = order_by_score(base.score, ids)[: n * options.candidate_factor]
    if embeddings is None:
        note = f"diverse: this model gives no image embeddings; ranked by {options.base} alone"
        return Ranking(strategy, _rows(candidates[:n], base, ids, keys), len(ids), (note,))
    notes: list[str] = []
    if embeddings.present is not None:
        missing = candidates[~embeddings.present[candidates]]
        if missing.size:
            notes.append(
                f"diverse: {missing.size} candidate rows have no embedding and were left out"
            )
        candidates = candidates[embeddings.present[candidates]]
    picks = k_center_greedy(embeddings.pool[candidates], n, labelled=embeddings.labelled)
    chosen = candidates[picks.order]
    rows = tuple(
        RankedRow(
            data_row_id=ids[r],
            global_key=keys.get(ids[r]),
            score=float(base.score[r]),
            rank=j + 1,
            reason=f"{_distance_text(float(d))}; {options.base} {base.explain(int(r))}",
        )
        for j, (r, d) in enumerate(zip(chosen.tolist(), picks.distance.tolist(), strict=True))
    )
    return Ranking(strategy, rows, len(ids), tuple(notes))


def _distance_text(distance: float) -> str:
    if not np.isfinite(distance):
        return "first pick (most uncertain candidate)"
    return f"{distance:.3f} from the nearest chosen or labelled image"


def _rows(
    order: IntArray, scored: S.RowScores, ids: Sequence[str], keys: Mapping[str, str]
) -> tuple[RankedRow, ...]:
    return tuple(
        RankedRow(
            data_row_id=ids[r],
            global_key=keys.get(ids[r]),
            score=float(scored.score[r]),
            rank=j + 1,
            reason=scored.explain(r),
        )
        for j, r in enumerate(order.tolist())
    )
