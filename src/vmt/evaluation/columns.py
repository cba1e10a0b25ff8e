"""Columnar views of samples and predictions: the arrays the matching kernel works on.

Boxes are kept as pycocotools sees them (``x, y, w, h`` with ``w = x1 - x0``) so that every IoU
the kernel computes is bit-for-bit the one pycocotools would compute from the same boxes.
Ground truth is sorted by (image, class); detections by (image, class, score descending), both
stably, so ties keep their input order exactly as pycocotools' mergesort does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vmt.detection_table import DetectionTable
from vmt.domain import Box, Prediction, Sample
from vmt.gc_pause import gc_paused

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class BoxColumns:
    """Parallel arrays of boxes; ``image``/``label`` index rows and classes."""

    image: IntArray
    label: IntArray
    x: FloatArray
    y: FloatArray
    w: FloatArray
    h: FloatArray
    area: FloatArray
    score: FloatArray
    """Detection confidence; all ones for ground truth."""
    rank: IntArray
    """Position of a detection within its (image, class) group by score; 0 for ground truth."""

    def __post_init__(self) -> None:
        n = self.image.shape[0]
        for name in ("label", "x", "y", "w", "h", "area", "score", "rank"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValueError(f"{name} must be ({n},), got {arr.shape}")

    def __len__(self) -> int:
        return int(self.image.shape[0])

    @property
    def x1(self) -> FloatArray:
        return self.x + self.w

    @property
    def y1(self) -> FloatArray:
        return self.y + self.h


@dataclass(frozen=True, slots=True)
class EvaluationInput:
    """Everything the metrics need, in columns."""

    rows: tuple[Sample, ...]
    classes: tuple[str, ...]
    gt: BoxColumns
    dt: BoxColumns
    unknown_row_predictions: int
    """Detections whose data row is not among the samples (left out)."""
    unknown_row_ids: tuple[str, ...]
    """Up to 20 such data row ids, for the report."""


def _coords(boxes: list[Box]) -> FloatArray:
    return np.stack(
        [
            np.asarray([b.x0 for b in boxes], dtype=np.float64),
            np.asarray([b.y0 for b in boxes], dtype=np.float64),
            np.asarray([b.x1 for b in boxes], dtype=np.float64),
            np.asarray([b.y1 for b in boxes], dtype=np.float64),
        ],
        axis=1,
    ).reshape(-1, 4)


def columns_from_arrays(
    image: IntArray,
    label: IntArray,
    xyxy: FloatArray,
    score: FloatArray | None,
) -> BoxColumns:
    """Sort boxes by (image, class[, score descending]) stably and derive widths, areas, ranks.

    ``xyxy`` is ``(n, 4)`` pixel corners; ``score`` is ``None`` for ground truth.
    """
    img = image
    lab = label
    x0, y0, x1, y1 = xyxy[:, 0], xyxy[:, 1], xyxy[:, 2], xyxy[:, 3]
    w = x1 - x0
    h = y1 - y0
    sc = np.ones(img.shape[0]) if score is None else score
    order = np.lexsort((lab, img)) if score is None else np.lexsort((-sc, lab, img))
    img, lab, sc = img[order], lab[order], sc[order]
    x0, y0, w, h = x0[order], y0[order], w[order], h[order]
    rank = np.zeros(img.shape[0], dtype=np.int64)
    if score is not None and img.shape[0]:
        key = img * (int(lab.max()) + 1) + lab
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        lengths = np.diff(np.r_[starts, key.shape[0]])
        rank = np.arange(key.shape[0], dtype=np.int64) - np.repeat(starts, lengths)
    return BoxColumns(
        image=img,
        label=lab,
        x=np.ascontiguousarray(x0),
        y=np.ascontiguousarray(y0),
        w=w,
        h=h,
        area=w * h,
        score=sc,
        rank=rank,
    )


def build_input(samples: Iterable[Sample], predictions: Iterable[Prediction]) -> EvaluationInput:
    with gc_paused():
        return _build_input(samples, predictions)


def _build_input(samples: Iterable[Sample], predictions: Iterable[Prediction]) -> EvaluationInput:
    """Index rows in the order given and classes by name (sorted); build both column sets.

    Predictions for a data row may come in several pieces (one per line); their detections are
    concatenated in input order. Predictions for unknown rows are counted and left out.
    """
    rows = tuple(samples)
    row_index: dict[str, int] = {}
    for i, sample in enumerate(rows):
        if sample.data_row_id in row_index:
            raise ValueError(f"data row {sample.data_row_id!r} appears twice in the ground truth")
        row_index[sample.data_row_id] = i
    table = (
        predictions
        if isinstance(predictions, DetectionTable)
        else DetectionTable.from_predictions(predictions)
    )

    gt_boxes = [(i, box) for i, sample in enumerate(rows) for box in sample.boxes]
    gt_labels = [box.label for _, box in gt_boxes]
    row_map = np.asarray([row_index.get(r, -1) for r in table.data_row_ids], dtype=np.int64)
    dt_image = row_map[table.row]
    known = dt_image >= 0
    unknown_ids = [table.data_row_ids[r] for r in np.unique(table.row[~known])[:20].tolist()]
    names = sorted({*gt_labels, *(table.labels[k] for k in np.unique(table.label[known]))})
    label_index = {name: k for k, name in enumerate(names)}
    table_labels = np.asarray([label_index.get(x, -1) for x in table.labels], dtype=np.int64)
    gt = columns_from_arrays(
        np.asarray([i for i, _ in gt_boxes], dtype=np.int64),
        np.asarray([label_index[x] for x in gt_labels], dtype=np.int64),
        _coords([box for _, box in gt_boxes]),
        None,
    )
    dt = columns_from_arrays(
        dt_image[known],
        table_labels[table.label[known]],
        table.xyxy[known],
        table.score[known],
    )
    return EvaluationInput(
        rows=rows,
        classes=tuple(names),
        gt=gt,
        dt=dt,
        unknown_row_predictions=int((~known).sum()),
        unknown_row_ids=tuple(unknown_ids),
    )
