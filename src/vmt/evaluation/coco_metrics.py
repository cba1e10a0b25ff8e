"""COCO accumulation and summary, exactly as pycocotools' ``accumulate`` and ``summarize``.

Input: the per-detection match flags of the kernel. Output: pycocotools' ``precision``
``[T, R, K, A, M]`` and ``recall`` ``[T, K, A, M]`` arrays (``-1`` where undefined) and the twelve
summary numbers. Detections of a class are ordered by score, then image order, then their rank
inside the image: the order of pycocotools' mergesort over its concatenated per-image lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vmt.evaluation.columns import BoxColumns, FloatArray, IntArray

COCO_IOU_THRESHOLDS: FloatArray = np.linspace(0.5, 0.95, 10, endpoint=True)
RECALL_THRESHOLDS: FloatArray = np.linspace(0.0, 1.0, 101, endpoint=True)
MAX_DETECTIONS = (1, 10, 100)
AREA_RANGES = ((0.0, 1e5**2), (0.0, 32.0**2), (32.0**2, 96.0**2), (96.0**2, 1e5**2))
AREA_NAMES = ("all", "small", "medium", "large")


@dataclass(frozen=True, slots=True)
class CocoCurves:
    precision: FloatArray
    """``[T, R, K, A]`` interpolated precision at 100 detections; -1 where a class has no
    ground truth (pycocotools' ``precision[..., -1]``)."""
    recall: FloatArray
    """``[T, K, A, M]``; -1 where a class has no ground truth."""
    gt_counts: IntArray
    """``[K, A]`` ground-truth boxes of each class inside each area range."""


def count_ground_truth(gt: BoxColumns, n_classes: int) -> IntArray:
    counts = np.zeros((n_classes, len(AREA_RANGES)), dtype=np.int64)
    for a, (lo, hi) in enumerate(AREA_RANGES):
        inside = ~((gt.area < lo) | (gt.area > hi))
        counts[:, a] = np.bincount(gt.label[inside], minlength=n_classes)
    return counts


def accumulate(
    dt: BoxColumns,
    matched: np.ndarray,
    ignored: np.ndarray,
    gt_counts: IntArray,
) -> CocoCurves:
    """pycocotools ``accumulate`` over every IoU threshold of ``matched`` (``[N, A, T]``)."""
    from vmt.evaluation.kernel import accumulate_precision

    n_classes = gt_counts.shape[0]
    order = np.lexsort((dt.rank, dt.image, -dt.score, dt.label))
    labels_sorted = dt.label[order]
    classes = np.arange(n_classes)
    precision, recall = accumulate_precision(
        order,
        np.searchsorted(labels_sorted, classes, side="left"),
        np.searchsorted(labels_sorted, classes, side="right"),
        matched,
        ignored,
        dt.rank,
        np.asarray(MAX_DETECTIONS, dtype=np.int64),
        gt_counts,
        RECALL_THRESHOLDS,
    )
    return CocoCurves(precision=precision, recall=recall, gt_counts=gt_counts)


def _mean_defined(values: np.ndarray) -> float | None:
    defined = values[values > -1]
    if defined.size == 0:
        return None
    return float(np.mean(defined))


def summarize(curves: CocoCurves) -> dict[str, float | None]:
    """The twelve pycocotools numbers (``None`` where pycocotools prints -1)."""
    p = curves.precision[: COCO_IOU_THRESHOLDS.shape[0]]
    r = curves.recall[: COCO_IOU_THRESHOLDS.shape[0]]
    last = len(MAX_DETECTIONS) - 1
    return {
        "map": _mean_defined(p[:, :, :, 0]),
        "map_50": _mean_defined(p[0, :, :, 0]),
        "map_75": _mean_defined(p[5, :, :, 0]),
        "map_small": _mean_defined(p[:, :, :, 1]),
        "map_medium": _mean_defined(p[:, :, :, 2]),
        "map_large": _mean_defined(p[:, :, :, 3]),
        "mar_1": _mean_defined(r[:, :, 0, 0]),
        "mar_10": _mean_defined(r[:, :, 0, 1]),
        "mar_100": _mean_defined(r[:, :, 0, 2]),
        "mar_small": _mean_defined(r[:, :, 1, last]),
        "mar_medium": _mean_defined(r[:, :, 2, last]),
        "mar_large": _mean_defined(r[:, :, 3, last]),
    }


def per_class_ap(curves: CocoCurves) -> tuple[list[float | None], ...]:
    """AP, AP50 and AP75 of each class (area all, 100 detections)."""
    p = curves.precision[: COCO_IOU_THRESHOLDS.shape[0]]
    n_classes = p.shape[2]
    ap = [_mean_defined(p[:, :, k, 0]) for k in range(n_classes)]
    ap50 = [_mean_defined(p[0, :, k, 0]) for k in range(n_classes)]
    ap75 = [_mean_defined(p[5, :, k, 0]) for k in range(n_classes)]
    return ap, ap50, ap75
