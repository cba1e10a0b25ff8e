"""Every COCO number and every per-class AP equals pycocotools (the oracle) within 1e-9."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders.detection_sets import STATS_KEYS, pycocotools_eval, random_dataset
from vmt.domain import Box, Detection, Prediction, Sample, Split
from vmt.evaluation import evaluate
from vmt.evaluation.coco_metrics import COCO_IOU_THRESHOLDS

TOL = 1e-9
SCORES = [0.3, 0.5, 0.9]


def assert_matches_pycocotools(
    samples: list[Sample], predictions: list[Prediction], classes: list[str]
) -> None:
    ev = evaluate(samples, predictions)
    stats, per_class, coco = pycocotools_eval(samples, predictions, classes)
    ours = np.asarray([v if v is not None else -1.0 for v in map(ev.summary.get, STATS_KEYS)])
    assert np.abs(ours - stats).max() <= TOL, (ours, stats)
    assert list(ev.classes) == classes
    for k, name in enumerate(classes):
        ap = ev.ap[k] if ev.ap[k] is not None else -1.0
        assert abs(ap - per_class[name]) <= TOL, (name, ap, per_class[name])
        # the PR curve at IoU 0.5 is pycocotools' interpolated precision, point for point
        theirs = coco.eval["precision"][0, :, k, 0, -1]  # type: ignore[attr-defined]
        assert np.abs(ev.pr_precision[k] - theirs).max() <= TOL


@pytest.mark.parametrize("integer_boxes", [False, True], ids=["float-boxes", "integer-boxes"])
@pytest.mark.parametrize("seed", range(8))
def test_random_datasets_match_pycocotools(seed: int, integer_boxes: bool) -> None:
    # empty images, classes only predicted / never predicted, floods of > 100 detections of
    # one class in an image, boxes at the borders, tied scores, every area range
    samples, predictions, classes = random_dataset(seed, integer_boxes=integer_boxes)
    flood = max(
        sum(d.box.label == "c0" for p in predictions if p.data_row_id == s.data_row_id
            for d in p.detections)
        for s in samples
    )  # fmt: skip
    assert flood > 100
    assert any(not s.boxes for s in samples)
    assert "only_pred" in classes
    assert_matches_pycocotools(samples, predictions, classes)


def test_larger_dataset_matches_pycocotools() -> None:
    samples, predictions, classes = random_dataset(99, images=300, classes=7)
    assert_matches_pycocotools(samples, predictions, classes)


def test_no_predictions_at_all() -> None:
    samples, _, classes = random_dataset(3, images=10)
    ev = evaluate(samples, [])
    assert ev.summary["map"] == 0.0
    assert ev.summary["mar_100"] == 0.0
    assert [ap for ap in ev.ap if ap is not None] == [0.0] * sum(
        1 for name in ev.classes if any(b.label == name for s in samples for b in s.boxes)
    )
    del classes


def test_no_ground_truth_at_all_gives_nulls_not_zeros() -> None:
    sample = Sample("r1", "u", 100, 100, Split.TEST, ())
    det = Detection(Box("car", 1, 1, 20, 20), 0.9)
    ev = evaluate([sample], [Prediction("r1", (det,))])
    assert all(v is None for v in ev.summary.values())
    assert ev.ap == [None]
    doc = ev.to_json()
    assert doc["per_class"]["car"]["ap"] is None
    assert doc["confidence_source"] == "default"


def _box(draw: st.DrawFn, label: str) -> Box:
    x0 = draw(st.integers(0, 60))
    y0 = draw(st.integers(0, 60))
    w = draw(st.integers(1, 40))
    h = draw(st.integers(1, 40))
    return Box(label, float(x0), float(y0), float(x0 + w), float(y0 + h))


@st.composite
def tiny_datasets(draw: st.DrawFn) -> tuple[list[Sample], list[Prediction], list[str]]:
    """Few images on a small grid: ties of IoU and score are everywhere."""
    labels = ["a", "b", "c"]
    samples, predictions = [], []
    for i in range(draw(st.integers(1, 4))):
        n_gt, n_dt = draw(st.integers(0, 5)), draw(st.integers(0, 7))
        gts = [_box(draw, draw(st.sampled_from(labels[:2]))) for _ in range(n_gt)]
        dets = [
            Detection(_box(draw, draw(st.sampled_from(labels))), draw(st.sampled_from(SCORES)))
            for _ in range(n_dt)
        ]
        samples.append(Sample(f"r{i}", "u", 100, 100, Split.TEST, tuple(gts)))
        predictions.append(Prediction(f"r{i}", tuple(dets)))
    classes = sorted({b.label for s in samples for b in s.boxes} | {
        d.box.label for p in predictions for d in p.detections})  # fmt: skip
    return samples, predictions, classes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_datasets())
def test_hypothesis_tiny_datasets_match_pycocotools(
    data: tuple[list[Sample], list[Prediction], list[str]],
) -> None:
    samples, predictions, classes = data
    if not classes or not any(p.detections for p in predictions):
        return  # pycocotools cannot load an empty results list
    with contextlib.redirect_stdout(io.StringIO()):
        assert_matches_pycocotools(samples, predictions, classes)


@pytest.mark.parametrize("iou", [0.3, 0.55, 0.62])
def test_pr_curve_at_any_iou_matches_pycocotools(iou: float) -> None:
    from pycocotools.cocoeval import COCOeval

    samples, predictions, classes = random_dataset(5)
    ev = evaluate(samples, predictions, iou=iou)
    _, _, coco = pycocotools_eval(samples, predictions, classes)
    params = coco.params  # type: ignore[attr-defined]
    params.iouThrs = np.asarray([iou])
    again = COCOeval(coco.cocoGt, coco.cocoDt, "bbox")  # type: ignore[attr-defined]
    again.params = params
    with contextlib.redirect_stdout(io.StringIO()):
        again.evaluate()
        again.accumulate()
    for k in range(len(classes)):
        theirs = again.eval["precision"][0, :, k, 0, -1]
        assert np.abs(ev.pr_precision[k] - theirs).max() <= TOL
    # 0.55 is a COCO threshold: the same index, not an extra one
    if iou == 0.55:
        assert np.isclose(COCO_IOU_THRESHOLDS, iou).sum() == 1


def with_crowds_and_areas(samples: list[Sample], seed: int) -> list[Sample]:
    """Some boxes turned into crowd regions (ignore regions, some of them large enough to cover
    detections), some given an ``area`` that puts them in another size range."""
    rng = np.random.default_rng(seed)
    out = []
    for s in samples:
        boxes = []
        for b in s.boxes:
            crowd = bool(rng.random() < 0.15)
            area = float(b.area * rng.choice([0.1, 0.5, 2.0, 20.0])) if rng.random() < 0.3 else None
            if crowd and rng.random() < 0.5:  # a crowd region over a wider area
                b = Box(b.label, max(0.0, b.x0 - 30), max(0.0, b.y0 - 30), b.x1 + 30, b.y1 + 30)
            boxes.append(Box(b.label, b.x0, b.y0, b.x1, b.y1, crowd=crowd, given_area=area))
        out.append(Sample(s.data_row_id, s.image_uri, s.width, s.height, s.split, tuple(boxes)))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_crowd_regions_and_given_areas_match_pycocotools(seed: int) -> None:
    samples, predictions, classes = random_dataset(seed + 50)
    crowded = with_crowds_and_areas(samples, seed)
    assert any(b.crowd for s in crowded for b in s.boxes)
    assert any(b.given_area is not None for s in crowded for b in s.boxes)
    assert_matches_pycocotools(crowded, predictions, classes)


def test_a_detection_on_a_crowd_region_is_neither_true_nor_false() -> None:
    crowd = Box("person", 0, 0, 100, 100, crowd=True)
    person = Box("person", 200, 200, 260, 300)
    sample = Sample("r", "u", 400, 400, Split.TEST, (person, crowd))
    dets = (Detection(Box("person", 200, 200, 260, 300), 0.9),
            Detection(Box("person", 10, 10, 40, 40), 0.95),
            Detection(Box("person", 50, 50, 90, 90), 0.8))  # fmt: skip
    ev = evaluate([sample], [Prediction("r", dets)])
    assert ev.summary["map"] == pytest.approx(1.0)
    assert int(ev.row_fp[0]) == 0 and int(ev.row_fn[0]) == 0
    assert_matches_pycocotools([sample], [Prediction("r", dets)], ["person"])
