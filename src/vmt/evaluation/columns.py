"""Columnar views of samples and predictions: the arrays the matching kernel works on.

Boxes are kept as pycocotools sees them (``x, y, w, h``, the width and height the source gave:
`vmt.domain.Box.width`) so that every area and IoU the kernel computes is bit-for-bit the one
pycocotools computes from the same boxes as a COCO ``bbox``.
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
    crowd: BoxColumns | None = None
    """Crowd regions (COCO ``iscrowd``): ignore regions, matched only by the COCO metrics;
    ``gt`` holds every other ground-truth box."""
    gt_seq: IntArray | None = None
    """For ``gt`` then ``crowd`` (in their sorted order): each box's position among all the
    ground truth as given, so the two can be merged back in input order."""


def _xywh(boxes: list[Box]) -> FloatArray:
    return np.stack(
        [
            np.asarray([b.x0 for b in boxes], dtype=np.float64),
            np.asarray([b.y0 for b in boxes], dtype=np.float64),
            np.asarray([b.width for b in boxes], dtype=np.float64),
            np.asarray([b.height for b in boxes], dtype=np.float64),
        ],
        axis=1,
    ).reshape(-1, 4)


def columns_from_arrays(
    image: IntArray,
    label: IntArray,
    xywh: FloatArray,
    score: FloatArray | None,
    area: FloatArray | None = None,
) -> BoxColumns:
    """Sort boxes by (image, class[, score descending]) stably and derive areas and ranks.

    ``xywh`` is ``(n, 4)`` pixel left, top, width, height (as the source gave them);
    ``score`` is ``None`` for ground truth; ``area`` (NaN where not given) replaces ``w * h``
    for the size ranges, as a COCO ``area`` does.
    """
    img = image
    lab = label
    x0, y0, w, h = xywh[:, 0], xywh[:, 1], xywh[:, 2], xywh[:, 3]
    sc = np.ones(img.shape[0]) if score is None else score
    order = np.lexsort((lab, img)) if score is None else np.lexsort((-sc, lab, img))
    img, lab, sc = img[order], lab[order], sc[order]
    x0, y0, w, h = x0[order], y0[order], w[order], h[order]
    areas = w * h
    if area is not None:
        given = area[order]
        areas = np.where(np.isnan(given), areas, given)
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
        area=areas,
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

    all_gt = [(i, box) for i, sample in enumerate(rows) for box in sample.boxes]
    gt_boxes = [(i, box) for i, box in all_gt if not box.crowd]
    crowd_boxes = [(i, box) for i, box in all_gt if box.crowd]
    gt_pos = [n for n, (_, box) in enumerate(all_gt) if not box.crowd]
    crowd_pos = [n for n, (_, box) in enumerate(all_gt) if box.crowd]
    gt_labels = [box.label for _, box in gt_boxes]
    row_map = np.asarray([row_index.get(r, -1) for r in table.data_row_ids], dtype=np.int64)
    dt_image = row_map[table.row]
    known = dt_image >= 0
    unknown_ids = [table.data_row_ids[r] for r in np.unique(table.row[~known])[:20].tolist()]
    names = sorted({*gt_labels, *(table.labels[k] for k in np.unique(table.label[known]))})
    label_index = {name: k for k, name in enumerate(names)}
    table_labels = np.asarray([label_index.get(x, -1) for x in table.labels], dtype=np.int64)
    gt = _ground_truth_columns(gt_boxes, label_index)
    crowd = gt_seq = None
    if crowd_boxes:
        crowd_labels = [label_index.get(box.label, -1) for _, box in crowd_boxes]
        kept = [k >= 0 for k in crowd_labels]
        crowd_kept = [pair for pair, keep in zip(crowd_boxes, kept, strict=True) if keep]
        crowd_pos = [n for n, keep in zip(crowd_pos, kept, strict=True) if keep]
        crowd = _ground_truth_columns(crowd_kept, label_index)
        gt_seq = np.r_[
            _sorted_positions(gt_boxes, label_index, gt_pos),
            _sorted_positions(crowd_kept, label_index, crowd_pos),
        ]
    dt = columns_from_arrays(
        dt_image[known],
        table_labels[table.label[known]],
        table.xywh[known],
        table.score[known],
    )
    return EvaluationInput(
        rows=rows,
        classes=tuple(names),
        gt=gt,
        dt=dt,
        unknown_row_predictions=int((~known).sum()),
        unknown_row_ids=tuple(unknown_ids),
        crowd=crowd,
        gt_seq=gt_seq,
    )


def _ground_truth_columns(boxes: list[tuple[int, Box]], label_index: dict[str, int]) -> BoxColumns:
    return columns_from_arrays(
        np.asarray([i for i, _ in boxes], dtype=np.int64),
        np.asarray([label_index[box.label] for _, box in boxes], dtype=np.int64),
        _xywh([box for _, box in boxes]),
        None,
        np.asarray(
            [np.nan if box.given_area is None else box.given_area for _, box in boxes],
            dtype=np.float64,
        ),
    )


def _sorted_positions(
    boxes: list[tuple[int, Box]], label_index: dict[str, int], positions: list[int]
) -> IntArray:
    """``positions`` (of ``boxes`` among all the ground truth) in the order
    `columns_from_arrays` sorts the boxes."""
    image = np.asarray([i for i, _ in boxes], dtype=np.int64)
    label = np.asarray([label_index[box.label] for _, box in boxes], dtype=np.int64)
    return np.asarray(positions, dtype=np.int64)[np.lexsort((label, image))]
