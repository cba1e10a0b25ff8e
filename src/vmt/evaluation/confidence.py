"""Precision, recall and F1 against the confidence threshold, per class and over all classes.

Greedy matching takes detections in score order, so the detections kept by a threshold match
exactly as they did in the full matching: one matching pass serves every threshold. A detection
is kept when ``score >= threshold``. Every detection counts (no 100-per-image cap here: this is
what a user keeps at that threshold).

Conventions: precision is undefined (``None``) without detections, recall without ground truth;
F1 is ``2 TP / (2 TP + FP + FN)``, which equals ``2PR / (P + R)`` wherever both are defined, and
is ``None`` only when there is neither ground truth nor a detection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vmt.evaluation.columns import FloatArray, IntArray

SWEEP_THRESHOLDS: FloatArray = np.round(np.arange(21) * 0.05, 2)
"""0.00, 0.05, ..., 1.00."""


@dataclass(frozen=True, slots=True)
class Counts:
    """True/false positives per class and threshold, and ground truth per class."""

    thresholds: FloatArray
    tp: IntArray
    """``[K, S]``"""
    fp: IntArray
    """``[K, S]``"""
    gt: IntArray
    """``[K]``"""

    @property
    def fn(self) -> IntArray:
        return self.gt[:, None] - self.tp

    def total(self) -> Counts:
        """All classes together (micro-averaged), as a one-class ``Counts``."""
        return Counts(
            thresholds=self.thresholds,
            tp=self.tp.sum(axis=0, keepdims=True),
            fp=self.fp.sum(axis=0, keepdims=True),
            gt=np.asarray([self.gt.sum()], dtype=np.int64),
        )


def count_by_threshold(
    label: IntArray,
    score: FloatArray,
    true_positive: np.ndarray,
    false_positive: np.ndarray,
    gt_per_class: IntArray,
    thresholds: FloatArray,
) -> Counts:
    """Counts of detections with ``score >= threshold`` for each threshold (ascending)."""
    n_classes = gt_per_class.shape[0]
    n_thr = thresholds.shape[0]
    bucket = np.searchsorted(thresholds, score, side="right") - 1
    kept = bucket >= 0

    def cumulative(mask: np.ndarray) -> IntArray:
        sel = mask & kept
        flat = np.bincount(label[sel] * n_thr + bucket[sel], minlength=n_classes * n_thr)
        per_bucket = flat.reshape(n_classes, n_thr)
        return np.cumsum(per_bucket[:, ::-1], axis=1)[:, ::-1].astype(np.int64)

    return Counts(
        thresholds=thresholds,
        tp=cumulative(true_positive),
        fp=cumulative(false_positive),
        gt=gt_per_class.astype(np.int64),
    )


def _ratio(num: IntArray, den: IntArray) -> list[float | None]:
    return [float(n) / float(d) if d > 0 else None for n, d in zip(num, den, strict=True)]


@dataclass(frozen=True, slots=True)
class Curve:
    """P/R/F1 of one class (or of all) at each threshold."""

    thresholds: list[float]
    tp: list[int]
    fp: list[int]
    fn: list[int]
    precision: list[float | None]
    recall: list[float | None]
    f1: list[float | None]
    best_threshold: float | None
    best_f1: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "thresholds": self.thresholds,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "best_threshold": self.best_threshold,
            "best_f1": self.best_f1,
        }


def curve(counts: Counts, k: int) -> Curve:
    """Row ``k`` of ``counts`` as P/R/F1, with the F1-optimal threshold (lowest on ties)."""
    tp, fp = counts.tp[k], counts.fp[k]
    gt = int(counts.gt[k])
    fn = gt - tp
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    best_threshold: float | None = None
    best_f1: float | None = None
    if gt > 0:
        values = np.asarray([v if v is not None else -1.0 for v in f1])
        i = int(np.argmax(values))
        best_threshold, best_f1 = float(counts.thresholds[i]), float(values[i])
    return Curve(
        thresholds=[float(t) for t in counts.thresholds],
        tp=[int(x) for x in tp],
        fp=[int(x) for x in fp],
        fn=[int(x) for x in fn],
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, np.full_like(tp, gt)),
        f1=f1,
        best_threshold=best_threshold,
        best_f1=best_f1,
    )
