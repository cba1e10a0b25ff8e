"""The confusion matrix and a TIDE-style error breakdown, at one IoU and one confidence.

Confusion matrix: class-agnostic greedy matching (by score, each detection takes the unmatched
ground truth of highest IoU >= the threshold, whatever its class). Rows are ground-truth classes,
columns predicted classes; the last row and column are background (a detection matching nothing,
a ground-truth box nobody found).

Error breakdown (Bolya et al., TIDE, counted rather than weighted by dAP): every false positive
of the class-aware matching is given one cause, tested in TIDE's order:

1. localisation: best overlap with a box of its class is in [0.1, IoU threshold);
2. classification: overlaps a box of another class by >= the IoU threshold;
3. duplicate: overlaps a box of its class by >= the threshold (already taken by a better one);
4. background: overlaps every box by < 0.1;
5. both: anything else (wrong class and poorly localised).

Missed: ground truth that no kept detection matched and that no localisation or classification
error points at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vmt.evaluation.columns import BoxColumns, FloatArray, IntArray

BACKGROUND_IOU = 0.1
ERROR_KINDS = ("localisation", "classification", "duplicate", "background", "both", "missed")


def confusion_matrix(
    gt: BoxColumns, dt: BoxColumns, agnostic_gt: IntArray, kept: np.ndarray, n_classes: int
) -> IntArray:
    """``[K + 1, K + 1]`` counts: rows ground truth, columns prediction, index K = background."""
    size = n_classes + 1
    sel = kept & (agnostic_gt >= 0)
    pairs = gt.label[agnostic_gt[sel]] * size + dt.label[sel]
    matrix = np.bincount(pairs, minlength=size * size).reshape(size, size)
    unmatched_dt = kept & (agnostic_gt < 0)
    matrix[n_classes, :n_classes] += np.bincount(dt.label[unmatched_dt], minlength=n_classes)
    found = np.zeros(len(gt), dtype=bool)
    found[agnostic_gt[sel]] = True
    matrix[:n_classes, n_classes] += np.bincount(gt.label[~found], minlength=n_classes)
    return matrix.astype(np.int64)


@dataclass(frozen=True, slots=True)
class ErrorBreakdown:
    counts: dict[str, int]
    per_class: IntArray
    """``[K, len(ERROR_KINDS)]``"""
    det_cause: IntArray | None = None
    """Per detection: index into ``ERROR_KINDS`` of its cause, -1 when it is no kept false
    positive."""
    gt_missed: np.ndarray | None = None
    """Per ground-truth box: counted as ``missed``."""
    det_iou: FloatArray | None = None
    """Per detection: its best IoU with a ground-truth box of its class (0 if none)."""


def error_breakdown(
    gt: BoxColumns,
    dt: BoxColumns,
    *,
    false_positive: np.ndarray,
    gt_found: np.ndarray,
    same_iou: FloatArray,
    same_arg: IntArray,
    other_iou: FloatArray,
    other_arg: IntArray,
    iou_threshold: float,
    n_classes: int,
) -> ErrorBreakdown:
    """Causes of the kept false positives (``false_positive`` mask) and of the missed boxes."""
    fp = false_positive
    loc = fp & (same_iou >= BACKGROUND_IOU) & (same_iou < iou_threshold)
    rest = fp & ~loc
    cls = rest & (other_iou >= iou_threshold)
    rest &= ~cls
    dup = rest & (same_iou >= iou_threshold)
    rest &= ~dup
    bkg = rest & (same_iou < BACKGROUND_IOU) & (other_iou < BACKGROUND_IOU)
    both = rest & ~bkg

    covered = np.zeros(len(gt), dtype=bool)
    covered[same_arg[loc]] = True
    covered[other_arg[cls]] = True
    missed = ~gt_found & ~covered

    per_class = np.zeros((n_classes, len(ERROR_KINDS)), dtype=np.int64)
    for j, mask in enumerate((loc, cls, dup, bkg, both)):
        per_class[:, j] = np.bincount(dt.label[mask], minlength=n_classes)
    per_class[:, 5] = np.bincount(gt.label[missed], minlength=n_classes)
    counts = {kind: int(per_class[:, j].sum()) for j, kind in enumerate(ERROR_KINDS)}
    det_cause = np.full(len(dt), -1, dtype=np.int64)
    for j, mask in enumerate((loc, cls, dup, bkg, both)):
        det_cause[mask] = j
    return ErrorBreakdown(
        counts=counts, per_class=per_class, det_cause=det_cause, gt_missed=missed, det_iou=same_iou
    )
