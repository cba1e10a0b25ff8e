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
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from vmt.evaluation.result import Evaluation
from vmt.name_uuid import name_uuids

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
    n_classes = max(len(ev.classes), 1)
    thresholds = np.asarray(CONFUSION_THRESHOLDS)
    keys = [f"{t:.1f}" for t in CONFUSION_THRESHOLDS]
    metric_name = f"{round(ev.iou * 100)}pct_iou"
    uuid_of = name_uuids(uuid.uuid5(uuid.NAMESPACE_URL, f"vmt-metrics:{namespace}"))

    # counts per (row, class) pair present in the ground truth or the predictions
    gt_pair = gt.image * n_classes + gt.label
    dt_pair = dt.image * n_classes + dt.label
    pairs = np.union1d(gt_pair, dt_pair)
    pair_tp, pair_fp, pair_gt = _counts(
        pairs, gt_pair, dt_pair, dt.score, ev.det_true_positive, ev.det_false_positive, thresholds
    )
    rows = np.arange(len(ev.data.rows))
    row_tp, row_fp, row_gt = _counts(
        rows, gt.image, dt.image, dt.score, ev.det_true_positive, ev.det_false_positive, thresholds
    )
    # plain lists: indexing them per row is far cheaper than numpy rows
    tp_pairs, fp_pairs, gt_pairs = pair_tp.tolist(), pair_fp.tolist(), pair_gt.tolist()
    tp_rows, fp_rows, gt_rows = row_tp.tolist(), row_fp.tolist(), row_gt.tolist()
    pair_row = pairs // n_classes
    bounds = np.searchsorted(pair_row, np.arange(len(ev.data.rows) + 1))
    busy = np.bincount(np.searchsorted(pairs, gt_pair), minlength=pairs.size) + np.bincount(
        np.searchsorted(pairs, dt_pair), minlength=pairs.size
    )
    for i, sample in enumerate(ev.data.rows):
        make = _RowMetrics(uuid_of, sample.data_row_id)
        tp, fp, fn = int(ev.row_tp[i]), int(ev.row_fp[i]), int(ev.row_fn[i])
        yield make("error_score", None, float(fp + fn), "ARITHMETIC_MEAN")
        yield make("matched_boxes", None, float(tp), "SUM")
        yield make("false_boxes", None, float(fp), "SUM")
        yield make("missed_boxes", None, float(fn), "SUM")
        n_out = 4
        if tp + fp + fn:
            yield make("row_f1", None, 2 * tp / (2 * tp + fp + fn), "ARITHMETIC_MEAN")
            n_out += 1
        value = _value(keys, tp_rows[i], fp_rows[i], gt_rows[i])
        yield make(metric_name, None, value, "CONFUSION_MATRIX")
        n_out += 1
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        chosen = list(range(lo, hi))
        room = MAX_METRICS_PER_ROW - n_out
        if len(chosen) > room:  # keep the classes with the most boxes
            chosen = sorted(sorted(chosen, key=lambda j: -int(busy[j]))[:room])
        for j in chosen:
            feature = ev.classes[int(pairs[j] % n_classes)]
            value = _value(keys, tp_pairs[j], fp_pairs[j], gt_pairs[j])
            yield make(metric_name, feature, value, "CONFUSION_MATRIX")


def _counts(
    groups: np.ndarray,
    gt_group: np.ndarray,
    dt_group: np.ndarray,
    score: np.ndarray,
    true_positive: np.ndarray,
    false_positive: np.ndarray,
    thresholds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TP and FP with ``score >= threshold`` (``[G, T]``) and ground truth (``[G]``) per group."""
    n_groups, n_thr = groups.size, thresholds.size
    index = np.searchsorted(groups, dt_group)
    bucket = np.searchsorted(thresholds, score, side="right") - 1
    kept = bucket >= 0

    def cumulative(mask: np.ndarray) -> np.ndarray:
        sel = mask & kept
        flat = np.bincount(index[sel] * n_thr + bucket[sel], minlength=n_groups * n_thr)
        return np.cumsum(flat.reshape(n_groups, n_thr)[:, ::-1], axis=1)[:, ::-1]

    n_gt = np.bincount(np.searchsorted(groups, gt_group), minlength=n_groups)
    return cumulative(true_positive), cumulative(false_positive), n_gt


def _value(keys: list[str], tp: list[int], fp: list[int], n_gt: int) -> dict[str, list[int]]:
    return {key: [t, f, 0, n_gt - t] for key, t, f in zip(keys, tp, fp, strict=True)}


class _RowMetrics:
    def __init__(self, uuid_of: Callable[[str], str], row_id: str) -> None:
        self.uuid_of = uuid_of
        self.row_id = row_id

    def __call__(
        self, name: str, feature: str | None, value: Any, aggregation: str
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "uuid": self.uuid_of(f"{self.row_id}/{name}/{feature or ''}"),
            "dataRow": {"id": self.row_id},
            "metricName": name,
            "metricValue": value,
            "aggregation": aggregation,
        }
        if feature is not None:
            row["featureName"] = feature
        return row
