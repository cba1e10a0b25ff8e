"""The result of one evaluation and its JSON form (exactly what ``metrics.json`` holds)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TypedDict

import numpy as np

from vmt.domain import Rejection
from vmt.evaluation.coco_metrics import RECALL_THRESHOLDS
from vmt.evaluation.columns import EvaluationInput, FloatArray, IntArray
from vmt.evaluation.confidence import Counts, curve
from vmt.evaluation.error_breakdown import ERROR_KINDS, ErrorBreakdown

BACKGROUND = "background"
_MAX_LINES = 50
_MAX_EXAMPLES = 5


class RejectionSummary(TypedDict):
    count: int
    lines: list[int]
    examples: list[str]


def summarize_rejections(rejections: Iterable[Rejection]) -> dict[str, RejectionSummary]:
    """``{reason: {count, lines (first 50), examples (first 5 details)}}``, by count."""
    counts: Counter[str] = Counter()
    lines: dict[str, list[int]] = {}
    examples: dict[str, list[str]] = {}
    for r in rejections:
        counts[r.reason] += 1
        if r.line is not None and len(lines.setdefault(r.reason, [])) < _MAX_LINES:
            lines[r.reason].append(r.line)
        where = f"line {r.line}: " if r.line is not None else ""
        detail = r.detail or (f"data row {r.data_row_id}" if r.data_row_id else r.reason)
        if len(examples.setdefault(r.reason, [])) < _MAX_EXAMPLES:
            examples[r.reason].append(where + detail)
    return {
        reason: RejectionSummary(count=n, lines=lines.get(reason, []), examples=examples[reason])
        for reason, n in counts.most_common()
    }


class ClassMetrics(TypedDict):
    ap: float | None
    ap_50: float | None
    ap_75: float | None
    gt_count: int
    pred_count: int
    best_f1: float | None
    best_threshold: float | None
    precision: float | None
    recall: float | None
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True)
class Evaluation:
    """Everything ``vmt evaluate`` computes. Arrays index classes as ``data.classes``."""

    data: EvaluationInput
    iou: float
    confidence: float
    confidence_source: str
    """``auto`` (F1-optimal over all classes), ``given``, or ``default`` (no ground truth)."""
    summary: dict[str, float | None]
    ap: list[float | None]
    ap_50: list[float | None]
    ap_75: list[float | None]
    sweep: Counts
    at_confidence: Counts
    pr_precision: FloatArray
    """``[K, 101]`` interpolated precision at ``iou`` against ``RECALL_THRESHOLDS`` (-1: no GT)."""
    confusion: IntArray
    errors: ErrorBreakdown
    det_true_positive: np.ndarray
    """Per detection (``data.dt`` order): matched at ``iou`` (any confidence)."""
    det_false_positive: np.ndarray
    """Per detection: unmatched at ``iou`` (and not ignored)."""
    row_tp: IntArray
    row_fp: IntArray
    row_fn: IntArray
    ignored: tuple[Rejection, ...] = ()
    """Predictions left out, and why (reader rejections, unknown data rows...)."""
    warnings: tuple[Rejection, ...] = field(default=())
    """Predictions kept but worth a look (e.g. no confidence: read as 1.0)."""

    @property
    def classes(self) -> tuple[str, ...]:
        return self.data.classes

    @property
    def row_error_score(self) -> IntArray:
        """False positives + false negatives of each row at the chosen IoU and confidence."""
        return self.row_fp + self.row_fn

    def worst_rows(self, n: int) -> list[int]:
        """Indices of the ``n`` rows with the highest error score (ties: input order)."""
        score = self.row_error_score
        order = np.lexsort((np.arange(score.shape[0]), -score))
        return [int(i) for i in order[:n] if score[i] > 0]

    def with_rejections(
        self, ignored: Iterable[Rejection], warnings: Iterable[Rejection] = ()
    ) -> Evaluation:
        """A copy that also reports what the readers left out (or kept with a warning)."""
        return replace(
            self,
            ignored=(*self.ignored, *ignored),
            warnings=(*self.warnings, *warnings),
        )

    def per_class_json(self) -> dict[str, ClassMetrics]:
        gt = self.sweep.gt
        pred = np.bincount(self.data.dt.label, minlength=len(self.classes))
        at = self.at_confidence
        out: dict[str, ClassMetrics] = {}
        for k, name in enumerate(self.classes):
            c = curve(self.sweep, k)
            tp, fp = int(at.tp[k, 0]), int(at.fp[k, 0])
            out[name] = ClassMetrics(
                ap=self.ap[k],
                ap_50=self.ap_50[k],
                ap_75=self.ap_75[k],
                gt_count=int(gt[k]),
                pred_count=int(pred[k]),
                best_f1=c.best_f1,
                best_threshold=c.best_threshold,
                precision=tp / (tp + fp) if tp + fp else None,
                recall=tp / int(gt[k]) if gt[k] else None,
                tp=tp,
                fp=fp,
                fn=int(gt[k]) - tp,
            )
        return out

    def to_json(self) -> dict[str, object]:
        """The ``metrics.json`` document."""
        classes = list(self.classes)
        sweep_total = curve(self.sweep.total(), 0)
        rows = self.data.rows
        score = self.row_error_score
        order = np.lexsort((np.arange(score.shape[0]), -score))
        per_row = [
            {
                "data_row_id": rows[i].data_row_id,
                "global_key": rows[i].global_key,
                "split": rows[i].split.value,
                "tp": int(self.row_tp[i]),
                "fp": int(self.row_fp[i]),
                "fn": int(self.row_fn[i]),
                "error_score": int(score[i]),
            }
            for i in (int(j) for j in order)
        ]
        unknown_rows = self.data.unknown_row_predictions
        ignored = summarize_rejections(self.ignored)
        if unknown_rows:
            ignored.setdefault(
                "unknown_data_row",
                RejectionSummary(
                    count=unknown_rows,
                    lines=[],
                    examples=[f"data row {i}" for i in self.data.unknown_row_ids[:5]],
                ),
            )
        total_ignored = sum(v["count"] for v in ignored.values())
        return {
            **self.summary,
            "iou_threshold": self.iou,
            "confidence_threshold": self.confidence,
            "confidence_source": self.confidence_source,
            "counts": {
                "images": len(rows),
                "classes": len(classes),
                "ground_truth_boxes": len(self.data.gt),
                "predictions": len(self.data.dt),
                "predictions_ignored": total_ignored,
            },
            "per_class": self.per_class_json(),
            "confidence_sweep": {
                "iou": self.iou,
                "thresholds": [float(t) for t in self.sweep.thresholds],
                "overall": sweep_total.to_json(),
                "per_class": {
                    name: curve(self.sweep, k).to_json() for k, name in enumerate(classes)
                },
            },
            "pr_curves": {
                "iou": self.iou,
                "recall": [float(r) for r in RECALL_THRESHOLDS],
                "per_class": {
                    name: (
                        [float(p) for p in self.pr_precision[k]]
                        if self.pr_precision[k, 0] > -1
                        else None
                    )
                    for k, name in enumerate(classes)
                },
            },
            "confusion_matrix": {
                "iou": self.iou,
                "confidence": self.confidence,
                "rows": "ground truth",
                "columns": "prediction",
                "labels": [*classes, BACKGROUND],
                "matrix": self.confusion.tolist(),
            },
            "error_breakdown": {
                "iou": self.iou,
                "confidence": self.confidence,
                "counts": self.errors.counts,
                "per_class": {
                    name: dict(zip(ERROR_KINDS, map(int, self.errors.per_class[k]), strict=True))
                    for k, name in enumerate(classes)
                },
            },
            "ignored_predictions": {"total": total_ignored, "by_reason": ignored},
            "warnings": summarize_rejections(self.warnings),
            "per_row": per_row,
        }
