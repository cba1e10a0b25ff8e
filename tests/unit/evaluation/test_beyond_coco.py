"""Confidence sweep, per-row counts and the confusion matrix against a brute-force reference:
plain greedy matching re-run from scratch for every threshold."""

from __future__ import annotations

import numpy as np
import pytest

from tests.builders.detection_sets import random_dataset
from vmt.domain import Box, Detection, Prediction, Sample, Split
from vmt.evaluation import evaluate
from vmt.evaluation.confidence import SWEEP_THRESHOLDS, curve


def _iou(a: Box, b: Box) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (a.area + b.area - inter)


def _greedy(gts: list[Box], dets: list[Detection], iou: float, *, class_aware: bool) -> list[int]:
    """For each detection (by score, stable), the ground truth it takes, or -1."""
    order = sorted(range(len(dets)), key=lambda j: -dets[j].score)
    used = [False] * len(gts)
    taken = [-1] * len(dets)
    for j in order:
        best, best_iou = -1, iou
        for g, gt in enumerate(gts):
            if used[g] or (class_aware and gt.label != dets[j].box.label):
                continue
            v = _iou(dets[j].box, gt)
            if v >= best_iou and (best == -1 or v > best_iou):
                best, best_iou = g, v
        if best >= 0:
            used[best] = True
            taken[j] = best
    return taken


def _by_row(predictions: list[Prediction]) -> dict[str, list[Detection]]:
    out: dict[str, list[Detection]] = {}
    for p in predictions:
        out.setdefault(p.data_row_id, []).extend(p.detections)
    return out


@pytest.fixture(scope="module")
def dataset() -> tuple[list[Sample], list[Prediction], list[str]]:
    return random_dataset(11, images=60)


@pytest.mark.parametrize("iou", [0.5, 0.7])
def test_sweep_equals_rematching_at_every_threshold(
    dataset: tuple[list[Sample], list[Prediction], list[str]], iou: float
) -> None:
    samples, predictions, _ = dataset
    ev = evaluate(samples, predictions, iou=iou)
    dets_by_row = _by_row(predictions)
    k_of = {name: k for k, name in enumerate(ev.classes)}
    for t, threshold in enumerate(SWEEP_THRESHOLDS):
        tp = np.zeros(len(ev.classes), dtype=int)
        fp = np.zeros(len(ev.classes), dtype=int)
        for s in samples:
            kept = [d for d in dets_by_row.get(s.data_row_id, []) if d.score >= threshold]
            for d, g in zip(kept, _greedy(list(s.boxes), kept, iou, class_aware=True), strict=True):
                (tp if g >= 0 else fp)[k_of[d.box.label]] += 1
        assert ev.sweep.tp[:, t].tolist() == tp.tolist(), threshold
        assert ev.sweep.fp[:, t].tolist() == fp.tolist(), threshold


def test_per_row_counts_and_confusion_matrix(
    dataset: tuple[list[Sample], list[Prediction], list[str]],
) -> None:
    samples, predictions, _ = dataset
    ev = evaluate(samples, predictions, confidence=0.4)
    dets_by_row = _by_row(predictions)
    k_of = {name: k for k, name in enumerate(ev.classes)}
    bg = len(ev.classes)
    matrix = np.zeros((bg + 1, bg + 1), dtype=int)
    for i, s in enumerate(samples):
        kept = [d for d in dets_by_row.get(s.data_row_id, []) if d.score >= 0.4]
        aware = _greedy(list(s.boxes), kept, 0.5, class_aware=True)
        tp = sum(g >= 0 for g in aware)
        assert (ev.row_tp[i], ev.row_fp[i], ev.row_fn[i]) == (
            tp,
            len(kept) - tp,
            len(s.boxes) - tp,
        )
        agnostic = _greedy(list(s.boxes), kept, 0.5, class_aware=False)
        for d, g in zip(kept, agnostic, strict=True):
            matrix[k_of[s.boxes[g].label] if g >= 0 else bg, k_of[d.box.label]] += 1
        for g, box in enumerate(s.boxes):
            if g not in agnostic:
                matrix[k_of[box.label], bg] += 1
    assert ev.confusion.tolist() == matrix.tolist()
    # rows are ground truth: each class row sums to its ground-truth count
    gt_counts = [sum(b.label == c for s in samples for b in s.boxes) for c in ev.classes]
    assert ev.confusion[:bg].sum(axis=1).tolist() == gt_counts


def test_auto_confidence_is_the_f1_optimal_sweep_threshold(
    dataset: tuple[list[Sample], list[Prediction], list[str]],
) -> None:
    samples, predictions, _ = dataset
    ev = evaluate(samples, predictions)
    overall = curve(ev.sweep.total(), 0)
    assert ev.confidence_source == "auto"
    assert ev.confidence == overall.best_threshold
    f1 = [v for v in overall.f1 if v is not None]
    assert overall.best_f1 == max(f1)
    # P, R and F1 agree with their definitions at the best threshold
    t = overall.thresholds.index(ev.confidence)
    p, r = overall.precision[t], overall.recall[t]
    assert p is not None and r is not None
    assert overall.f1[t] == pytest.approx(2 * p * r / (p + r))


def _sample(*boxes: Box) -> Sample:
    return Sample("r", "u", 200, 200, Split.TEST, boxes)


def _pred(*dets: tuple[Box, float]) -> Prediction:
    return Prediction("r", tuple(Detection(b, s) for b, s in dets))


@pytest.mark.parametrize(
    ("gts", "dets", "expected"),
    [
        # right place, wrong class
        ([Box("a", 0, 0, 50, 50)], [(Box("b", 0, 0, 50, 49), 0.9)],
         {"classification": 1, "missed": 0}),
        # right class, poor overlap (IoU ~0.33)
        ([Box("a", 0, 0, 50, 50)], [(Box("a", 25, 0, 75, 50), 0.9)],
         {"localisation": 1, "missed": 0}),
        # a second box on an object already found
        ([Box("a", 0, 0, 50, 50)], [(Box("a", 0, 0, 50, 50), 0.9), (Box("a", 1, 1, 50, 50), 0.8)],
         {"duplicate": 1}),
        # nowhere near anything
        ([Box("a", 0, 0, 50, 50)], [(Box("a", 120, 120, 180, 180), 0.9)],
         {"background": 1, "missed": 1}),
        # wrong class and poor overlap
        ([Box("a", 0, 0, 50, 50)], [(Box("b", 25, 0, 75, 50), 0.9)], {"both": 1, "missed": 1}),
        # nothing predicted
        ([Box("a", 0, 0, 50, 50)], [], {"missed": 1}),
    ],
)  # fmt: skip
def test_error_breakdown_cases(
    gts: list[Box], dets: list[tuple[Box, float]], expected: dict[str, int]
) -> None:
    ev = evaluate([_sample(*gts)], [_pred(*dets)], confidence=0.5)
    counts = ev.errors.counts
    for kind, n in expected.items():
        assert counts[kind] == n, (kind, counts)
    assert sum(counts.values()) == sum(expected.values()), counts
