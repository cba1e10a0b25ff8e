"""Per-data-row custom metric rows for a Labelbox model run (FORMATS.md 1.3).

For every evaluated row: scalar metrics (names outside Labelbox's reserved list) at the chosen
IoU and confidence, and confidence-keyed confusion metrics ``{threshold: [tp, fp, tn, fn]}`` over
11 thresholds 0.0..1.0 (Labelbox accepts 2 to 15), once over all classes and once per class.
At most 20 metrics per row (Labelbox's limit): when a row holds more classes, those with the
most boxes are kept. True negatives are always 0 for detection. UUIDs are uuid5 of
(namespace, row, metric, class), so the same evaluation always yields the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

from vmt.evaluation.result import Evaluation

RESERVED_SCALAR_NAMES = frozenset(
    {
        "iou",
        "precision",
        "recall",
        "f1",
        "true_positive_count",
        "false_positive_count",
        "true_negative_count",
        "false_negative_count",
    }
)
CONFUSION_THRESHOLDS = tuple(round(i * 0.1, 1) for i in range(11))
MAX_METRICS_PER_ROW = 20
SCALAR_NAMES = ("error_score", "matched_boxes", "false_boxes", "missed_boxes", "row_f1")
assert not RESERVED_SCALAR_NAMES & set(SCALAR_NAMES)


def row_metric_rows(evaluation: Evaluation, *, namespace: str = "") -> Iterator[dict[str, Any]]:
    """The metric rows of every evaluated data row, ready for ``model_run.add_predictions``."""
    ev = evaluation
    gt, dt = ev.data.gt, ev.data.dt
    n_rows = len(ev.data.rows)
    rows = np.arange(n_rows + 1)
    g_bounds = np.searchsorted(gt.image, rows)
    d_bounds = np.searchsorted(dt.image, rows)
    thresholds = np.asarray(CONFUSION_THRESHOLDS)
    metric_name = f"{round(ev.iou * 100)}pct_iou"
    base = uuid.uuid5(uuid.NAMESPACE_URL, f"vmt-metrics:{namespace}")
    for i, sample in enumerate(ev.data.rows):
        row_id = sample.data_row_id
        g = slice(int(g_bounds[i]), int(g_bounds[i + 1]))
        d = slice(int(d_bounds[i]), int(d_bounds[i + 1]))
        make = _RowMetrics(base, row_id)
        tp, fp, fn = int(ev.row_tp[i]), int(ev.row_fp[i]), int(ev.row_fn[i])
        out = [
            make("error_score", None, float(fp + fn), "ARITHMETIC_MEAN"),
            make("matched_boxes", None, float(tp), "SUM"),
            make("false_boxes", None, float(fp), "SUM"),
            make("missed_boxes", None, float(fn), "SUM"),
        ]
        if tp + fp + fn:
            out.append(make("row_f1", None, 2 * tp / (2 * tp + fp + fn), "ARITHMETIC_MEAN"))
        g_label = gt.label[g]
        d_label = dt.label[d]
        d_score = dt.score[d]
        d_tp = ev.det_true_positive[d]
        d_fp = ev.det_false_positive[d]
        everything = np.ones(d_label.shape[0], dtype=bool)
        out.append(
            make(metric_name, None, _confusion(thresholds, d_score, d_tp, d_fp,
                                               everything, int(g_label.shape[0])),
                 "CONFUSION_MATRIX")
        )  # fmt: skip
        present, counts = np.unique(np.r_[g_label, d_label], return_counts=True)
        room = MAX_METRICS_PER_ROW - len(out)
        busiest = present[np.lexsort((present, -counts))][:room]
        for k in sorted(busiest.tolist()):
            mask = d_label == k
            value = _confusion(thresholds, d_score, d_tp, d_fp, mask, int((g_label == k).sum()))
            out.append(make(metric_name, ev.classes[k], value, "CONFUSION_MATRIX"))
        yield from out


class _RowMetrics:
    def __init__(self, base: uuid.UUID, row_id: str) -> None:
        self.base = base
        self.row_id = row_id

    def __call__(
        self, name: str, feature: str | None, value: Any, aggregation: str
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "uuid": str(uuid.uuid5(self.base, f"{self.row_id}/{name}/{feature or ''}")),
            "dataRow": {"id": self.row_id},
            "metricName": name,
            "metricValue": value,
            "aggregation": aggregation,
        }
        if feature is not None:
            row["featureName"] = feature
        return row


def _confusion(
    thresholds: np.ndarray,
    score: np.ndarray,
    tp: np.ndarray,
    fp: np.ndarray,
    mask: np.ndarray,
    n_gt: int,
) -> dict[str, list[int]]:
    value: dict[str, list[int]] = {}
    for t in thresholds:
        kept = mask & (score >= t)
        n_tp = int((kept & tp).sum())
        value[f"{t:.1f}"] = [n_tp, int((kept & fp).sum()), 0, n_gt - n_tp]
    return value
