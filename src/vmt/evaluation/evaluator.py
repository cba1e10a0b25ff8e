"""``evaluate()``: ground truth + predictions in, every metric of ``metrics.json`` out."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np

from vmt.domain import Prediction, Sample
from vmt.errors import InputError
from vmt.evaluation.coco_metrics import (
    AREA_RANGES,
    COCO_IOU_THRESHOLDS,
    accumulate,
    count_ground_truth,
    per_class_ap,
    summarize,
)
from vmt.evaluation.columns import EvaluationInput, FloatArray, IntArray, build_input
from vmt.evaluation.confidence import SWEEP_THRESHOLDS, count_by_threshold, curve
from vmt.evaluation.error_breakdown import confusion_matrix, error_breakdown
from vmt.evaluation.result import Evaluation

log = logging.getLogger("vmt")

DEFAULT_CONFIDENCE = 0.5
"""Used when ``confidence`` is auto but there is no ground truth to optimise F1 on."""


def iou_thresholds(iou: float) -> tuple[FloatArray, int]:
    """The COCO thresholds, plus ``iou`` when it is not one of them; and the index of ``iou``."""
    if not 0.0 < iou <= 1.0:
        raise InputError(f"--iou must be in (0, 1], got {iou}")
    close = np.flatnonzero(np.abs(COCO_IOU_THRESHOLDS - iou) < 1e-9)
    if close.size:
        return COCO_IOU_THRESHOLDS, int(close[0])
    return np.r_[COCO_IOU_THRESHOLDS, iou], COCO_IOU_THRESHOLDS.shape[0]


def evaluate(
    samples: Iterable[Sample],
    predictions: Iterable[Prediction],
    *,
    iou: float = 0.5,
    confidence: float | None = None,
) -> Evaluation:
    """COCO metrics (as pycocotools), confidence sweep, PR curves, confusion, per-row errors.

    ``iou`` is the threshold of everything beyond the COCO numbers; ``confidence`` the score a
    detection needs to count in the confusion matrix, per-row counts and per-class
    precision/recall (``None``: the F1-optimal threshold over all classes). Predictions for
    data rows not among ``samples`` are left out and counted; ``rejections`` (from the readers)
    are reported with them.
    """
    if confidence is not None and not 0.0 <= confidence <= 1.0:
        raise InputError(f"--confidence must be in [0, 1], got {confidence}")
    data = build_input(samples, predictions)
    return _evaluate_columns(data, iou=iou, confidence=confidence)


def _match_per_class(
    data: EvaluationInput,
    gt_key: IntArray,
    dt_key: IntArray,
    thresholds: FloatArray,
    t_eval: int,
) -> tuple[np.ndarray, np.ndarray, IntArray]:
    """`kernel.match_per_class` over the ground truth and the crowd regions merged back in
    input order inside each (image, class) group; ``gt_by`` indexes ``data.gt``."""
    from vmt.evaluation.kernel import match_per_class

    gt, dt, crowd = data.gt, data.dt, data.crowd
    area_lo = np.asarray([lo for lo, _ in AREA_RANGES])
    area_hi = np.asarray([hi for _, hi in AREA_RANGES])
    if crowd is None or data.gt_seq is None or len(crowd) == 0:
        is_crowd = np.zeros(len(gt), dtype=np.uint8)
        return match_per_class(
            gt.x, gt.y, gt.w, gt.h, gt.area, gt_key, is_crowd,
            dt.x, dt.y, dt.w, dt.h, dt.area, dt_key,
            thresholds, area_lo, area_hi, t_eval,
        )  # fmt: skip
    stride = max(len(data.classes), 1)
    key = np.r_[gt_key, crowd.image * stride + crowd.label]
    order = np.lexsort((data.gt_seq, key))
    x, y, w, h, area = (
        np.r_[getattr(gt, name), getattr(crowd, name)][order]
        for name in ("x", "y", "w", "h", "area")
    )
    is_crowd = np.r_[np.zeros(len(gt)), np.ones(len(crowd))].astype(np.uint8)[order]
    matched, ignored, merged_by = match_per_class(
        x, y, w, h, area, key[order], is_crowd,
        dt.x, dt.y, dt.w, dt.h, dt.area, dt_key,
        thresholds, area_lo, area_hi, t_eval,
    )  # fmt: skip
    gt_by = np.full(len(gt), -1, dtype=np.int64)
    regular = order < len(gt)
    gt_by[order[regular]] = merged_by[regular]
    return matched, ignored, gt_by


def _evaluate_columns(data: EvaluationInput, *, iou: float, confidence: float | None) -> Evaluation:
    from vmt.evaluation.kernel import match_per_image

    thresholds, t_eval = iou_thresholds(iou)
    gt, dt = data.gt, data.dt
    n_classes = len(data.classes)
    n_rows = len(data.rows)
    stride = max(n_classes, 1)

    gt_key = gt.image * stride + gt.label
    dt_key = dt.image * stride + dt.label
    matched, ignored, gt_by = _match_per_class(data, gt_key, dt_key, thresholds, t_eval)

    gt_counts = count_ground_truth(gt, n_classes)
    curves = accumulate(dt, matched, ignored, gt_counts)
    ap, ap_50, ap_75 = per_class_ap(curves)

    is_tp = matched[:, 0, t_eval].view(bool)
    counted = ~ignored[:, 0, t_eval].view(bool)
    tp_mask = is_tp & counted
    fp_mask = ~is_tp & counted
    sweep = count_by_threshold(
        dt.label, dt.score, tp_mask, fp_mask, gt_counts[:, 0], SWEEP_THRESHOLDS
    )
    if confidence is not None:
        chosen, source = confidence, "given"
    else:
        best = curve(sweep.total(), 0).best_threshold
        chosen, source = (best, "auto") if best is not None else (DEFAULT_CONFIDENCE, "default")
    at_confidence = count_by_threshold(
        dt.label, dt.score, tp_mask, fp_mask, gt_counts[:, 0], np.asarray([chosen])
    )
    kept = dt.score >= chosen

    rows = np.arange(n_rows)
    by_score = np.lexsort((-dt.score, dt.image))
    agnostic_gt, same_iou, same_arg, other_iou, other_arg = match_per_image(
        gt.x, gt.y, gt.w, gt.h, gt.label,
        dt.x, dt.y, dt.w, dt.h, dt.label, dt.score,
        np.searchsorted(gt.image, rows, side="left"),
        np.searchsorted(gt.image, rows, side="right"),
        by_score,
        np.searchsorted(dt.image[by_score], rows, side="left"),
        np.searchsorted(dt.image[by_score], rows, side="right"),
        float(thresholds[t_eval]), float(chosen),
    )  # fmt: skip
    confusion = confusion_matrix(gt, dt, agnostic_gt, kept & counted, n_classes)
    gt_found = gt_by >= 0
    gt_found[gt_found] = dt.score[gt_by[gt_found]] >= chosen
    errors = error_breakdown(
        gt,
        dt,
        false_positive=fp_mask & kept,
        gt_found=gt_found,
        same_iou=same_iou,
        same_arg=same_arg,
        other_iou=other_iou,
        other_arg=other_arg,
        iou_threshold=float(thresholds[t_eval]),
        n_classes=n_classes,
    )
    row_tp = np.bincount(dt.image[tp_mask & kept], minlength=n_rows)
    row_fp = np.bincount(dt.image[fp_mask & kept], minlength=n_rows)
    row_fn = np.bincount(gt.image, minlength=n_rows) - row_tp
    log.debug("evaluated %d rows, %d ground-truth boxes, %d detections", n_rows, len(gt), len(dt))
    return Evaluation(
        data=data,
        iou=float(iou),
        confidence=float(chosen),
        confidence_source=source,
        summary=summarize(curves),
        ap=ap,
        ap_50=ap_50,
        ap_75=ap_75,
        sweep=sweep,
        at_confidence=at_confidence,
        pr_precision=np.ascontiguousarray(curves.precision[t_eval, :, :, 0].T),
        confusion=confusion,
        errors=errors,
        det_true_positive=tp_mask,
        det_false_positive=fp_mask,
        row_tp=row_tp.astype(np.int64),
        row_fp=row_fp.astype(np.int64),
        row_fn=row_fn.astype(np.int64),
    )
