"""Per-row scores of a pool's predictions: higher means "label this row sooner".

Every function takes a ``DetectionTable`` (one row per pool data row, possibly without
detections) and returns a ``RowScores``: one float per row and a function that explains a row's
score in words. Detections scoring under ``floor`` are ignored (they are the detector's noise
floor, not an opinion). Only the top score of each box is known (Vertex and our detector give no
class distribution), so "confidence" is a box's score and "uncertain" means close to the decision
threshold or low.

Sources: least confidence, margin and entropy sampling as surveyed in Settles, *Active Learning
Literature Survey* (2009), section 3.1, applied per box (Brust et al., *Active Learning for Deep
Object Detection*, 2018, aggregate box scores per image by max or sum); rare-class sampling as
Roboflow's "rare classes" active-learning rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vmt.detection_table import DetectionTable

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RowScores:
    score: FloatArray
    """``(R,)``: one score per row of the table, higher first."""
    explain: Callable[[int], str]
    """Row index -> why it scored what it did (called only for the rows written out)."""


@dataclass(frozen=True)
class _Kept:
    """The detections at or above the floor, and each row's pick among them."""

    index: IntArray
    """Indices (into the table) of the kept detections."""
    count: IntArray
    """``(R,)`` kept detections per row."""


def _kept(table: DetectionTable, floor: float) -> _Kept:
    index = np.flatnonzero(table.score >= floor).astype(np.int64)
    count = np.bincount(table.row[index], minlength=len(table.data_row_ids)).astype(np.int64)
    return _Kept(index, count)


def _pick_per_row(table: DetectionTable, index: IntArray, key: FloatArray) -> IntArray:
    """For each row, the detection (table index) of ``index`` with the largest ``key``
    (-1 where the row has none); ties go to the higher score, then the earlier detection."""
    picks = np.full(len(table.data_row_ids), -1, dtype=np.int64)
    if index.size == 0:
        return picks
    order = np.lexsort((index, -table.score[index], -key, table.row[index]))
    rows = table.row[index][order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    picks[rows[first]] = index[order[first]]
    return picks


def _gather(values: FloatArray, picks: IntArray, default: float) -> FloatArray:
    """``values[picks]`` where a pick exists (>= 0), ``default`` elsewhere."""
    out = np.full(picks.shape[0], default, dtype=np.float64)
    has = picks >= 0
    out[has] = values[picks[has]]
    return out


def _box(table: DetectionTable, i: int) -> str:
    return f"{table.score[i]:.2f} ({table.labels[int(table.label[i])]})"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}es" if word.endswith("x") else f"{n} {word}s"


def least_confidence(table: DetectionTable, *, floor: float) -> RowScores:
    """``1 - (best box score)``: rows whose most confident box is weakest first; a row with no
    box at or above ``floor`` scores 1 (the model found nothing there)."""
    kept = _kept(table, floor)
    best = _pick_per_row(table, kept.index, table.score[kept.index])
    top = _gather(table.score, best, 0.0)
    score = 1.0 - top

    def explain(r: int) -> str:
        if best[r] < 0:
            return f"no box scored {floor:g} or more"
        return f"best box {_box(table, int(best[r]))}"

    return RowScores(score.astype(np.float64), explain)


def margin(table: DetectionTable, *, threshold: float, window: float, floor: float) -> RowScores:
    """``1 - min |score - threshold|`` over a row's boxes: rows with a box closest to the
    decision threshold first (0 for a row without boxes). The reason counts the boxes within
    ``window`` of the threshold."""
    kept = _kept(table, floor)
    distance = np.abs(table.score[kept.index] - threshold)
    closest = _pick_per_row(table, kept.index, -distance)
    nearest = _gather(np.abs(table.score - threshold), closest, 1.0)
    score = np.where(closest >= 0, 1.0 - nearest, 0.0)
    within = np.bincount(
        table.row[kept.index[distance <= window + 1e-12]], minlength=len(table.data_row_ids)
    )

    def explain(r: int) -> str:
        if closest[r] < 0:
            return f"no box scored {floor:g} or more"
        return (
            f"{_plural(int(within[r]), 'box')} within {window:g} of the threshold "
            f"{threshold:.2f}; closest {_box(table, int(closest[r]))}"
        )

    return RowScores(score.astype(np.float64), explain)


def box_entropy(p: FloatArray) -> FloatArray:
    """Binary entropy in bits of "is this box an object", ``(N,) -> (N,)``; 0 at p = 0 or 1."""
    q = np.clip(p, 1e-12, 1.0 - 1e-12)
    h = -(q * np.log2(q) + (1.0 - q) * np.log2(1.0 - q))
    return np.where((p <= 0.0) | (p >= 1.0), 0.0, h)


def entropy(table: DetectionTable, *, floor: float) -> RowScores:
    """Sum over a row's boxes of their binary entropy (bits): many boxes near 0.5 first."""
    kept = _kept(table, floor)
    h = box_entropy(table.score[kept.index])
    total = np.bincount(table.row[kept.index], weights=h, minlength=len(table.data_row_ids))
    worst = _pick_per_row(table, kept.index, h)

    def explain(r: int) -> str:
        if worst[r] < 0:
            return f"no box scored {floor:g} or more"
        return (
            f"entropy {total[r]:.2f} bits over {_plural(int(kept.count[r]), 'box')}; "
            f"most uncertain {_box(table, int(worst[r]))}"
        )

    return RowScores(total.astype(np.float64), explain)


def rare_class(
    table: DetectionTable, *, training_boxes: Mapping[str, int], floor: float
) -> RowScores:
    """Rows predicted to contain the rarest training classes first.

    A box is worth ``score * (n_min + 1) / (n_class + 1)``, where ``n_class`` is its class's
    number of training boxes (0 for a class never trained on) and ``n_min`` the smallest count:
    a confident box of the rarest class is worth its score, a box of a class ten times as common
    about a tenth. A row scores its best box (0 without boxes).
    """
    counts = np.asarray([training_boxes.get(name, 0) for name in table.labels], dtype=np.float64)
    n_min = min([*training_boxes.values(), *counts.tolist()], default=0)
    weight = (n_min + 1.0) / (counts + 1.0)
    kept = _kept(table, floor)
    value = table.score[kept.index] * weight[table.label[kept.index]]
    best = _pick_per_row(table, kept.index, value)
    full = np.zeros(table.score.shape[0])
    full[kept.index] = value
    score = _gather(full, best, 0.0)

    def explain(r: int) -> str:
        if best[r] < 0:
            return f"no box scored {floor:g} or more"
        i = int(best[r])
        n = int(counts[int(table.label[i])])
        return f"predicts {_box(table, i)}, a class with {_plural(n, 'training box')}"

    return RowScores(score.astype(np.float64), explain)


def random_order(table: DetectionTable, *, seed: int) -> RowScores:
    """A seeded baseline: each row's score is a hash of ``(seed, data row id)`` in [0, 1), so a
    row's score does not depend on the order or the size of the pool."""
    score = np.asarray(
        [_unit_hash(seed, data_row_id) for data_row_id in table.data_row_ids], dtype=np.float64
    )
    return RowScores(score, lambda _r: f"random (seed {seed})")


def _unit_hash(seed: int, text: str) -> float:
    digest = hashlib.blake2b(f"{seed}:{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64
