from __future__ import annotations

import pytest

from vmt.backends.vertex.calls import run_label_value
from vmt.backends.vertex.limits import DatasetLimits
from vmt.domain import Box, Sample, Split
from vmt.errors import InputError


def _sample(i: int, split: Split, labels: list[str], boxes_each: int = 1) -> Sample:
    boxes = tuple(Box(name, 0, 0, 5, 5) for name in labels for _ in range(boxes_each))
    return Sample(f"r{i}", f"gs://b/{i}.jpg", 10, 10, split, boxes)


def _dataset(training: int = 10, label: str = "car") -> list[Sample]:
    rows = [_sample(i, Split.TRAINING, [label]) for i in range(training)]
    rows += [_sample(100, Split.VALIDATION, [label]), _sample(101, Split.TEST, [])]
    return rows


def test_ten_training_images_per_class_pass() -> None:
    DatasetLimits().update_all(_dataset(10)).check()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        # nine training images of a class
        (_dataset(9), "fewer than 10 training images: car"),
        # a class seen only in validation
        ([*_dataset(10), _sample(102, Split.VALIDATION, ["bike"])], "training images: bike"),
        # no test split
        ([s for s in _dataset(10) if s.split is not Split.TEST], "empty split.*test"),
        # too many boxes on one image
        (
            [*_dataset(10), _sample(103, Split.TEST, ["car"], boxes_each=501)],
            "with more than 500 boxes",
        ),
        # no boxes at all
        ([_sample(i, s, []) for i, s in enumerate(Split) if s is not Split.UNASSIGNED], "0 labels"),
    ],
)
def test_broken_limits(rows: list[Sample], message: str) -> None:
    with pytest.raises(InputError, match=message):
        DatasetLimits().update_all(rows).check()


def test_unassigned_rows_are_not_counted() -> None:
    rows = [*_dataset(10), _sample(200, Split.UNASSIGNED, ["bike"])]
    DatasetLimits().update_all(rows).check()


@pytest.mark.parametrize(
    ("run_id", "expected"),
    [("run-1", "run-1"), ("abc_DEF", None), ("x" * 80, None), ("ÜÜ", None)],
)
def test_run_label_values_are_valid_and_distinct(run_id: str, expected: str | None) -> None:
    value = run_label_value(run_id)
    assert len(value) <= 63 and all(c.islower() or c.isdigit() or c in "-_" for c in value)
    if expected:
        assert value == expected
    assert value != run_label_value(run_id + "x")
