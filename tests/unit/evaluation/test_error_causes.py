"""Each detection's and each ground-truth box's error cause (``ErrorBreakdown.det_cause``,
``gt_missed``) adds up to the breakdown's counts, per class, at every confidence."""

from __future__ import annotations

import numpy as np
import pytest

from tests.builders.detection_sets import random_dataset
from vmt.evaluation import evaluate
from vmt.evaluation.error_breakdown import ERROR_KINDS


@pytest.mark.parametrize("confidence", [None, 0.0, 0.5, 0.9])
def test_per_box_causes_add_up_to_the_breakdown(confidence: float | None) -> None:
    samples, predictions, _ = random_dataset(7, images=25)
    ev = evaluate(samples, predictions, confidence=confidence)
    cause, missed = ev.errors.det_cause, ev.errors.gt_missed
    assert cause is not None and missed is not None and ev.errors.det_iou is not None
    k = len(ev.classes)
    for j, kind in enumerate(ERROR_KINDS[:-1]):
        per_class = np.bincount(ev.data.dt.label[cause == j], minlength=k)
        assert per_class.tolist() == ev.errors.per_class[:, j].tolist(), kind
    assert np.bincount(ev.data.gt.label[missed], minlength=k).tolist() == (
        ev.errors.per_class[:, -1].tolist()
    )
    kept = ev.data.dt.score >= ev.confidence
    assert not (cause[~kept] >= 0).any()
    assert ((cause >= 0) == (ev.det_false_positive & kept)).all()
