"""COCO files as Python and pandas write them: integral-float ids are the ids they name (as in
pycocotools), other numbers are refused naming the field and value; a score that is not a finite
number is reported and left out, the other results are scored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vmt.formats.coco import read_ground_truth, read_results

GT: dict[str, Any] = {
    "images": [
        {"id": 1.0, "file_name": "a.jpg", "width": 640.0, "height": 480.0},
        {"id": 2, "file_name": "b.jpg", "width": 640, "height": 480},
    ],
    "annotations": [
        {"id": 1, "image_id": 1.0, "category_id": 1.0, "bbox": [1, 2, 10, 20], "area": 200},
        {"id": 2, "image_id": 2, "category_id": 2, "bbox": [5, 5, 10, 10], "area": float("nan")},
    ],
    "categories": [{"id": 1.0, "name": "car"}, {"id": 2, "name": "dog"}],
}


def _write(tmp: Path, name: str, value: Any) -> Path:
    path = tmp / name
    path.write_text(json.dumps(value))  # NaN and Infinity as the literals Python writes
    return path


def test_integral_float_ids_are_integers(tmp_path: Path) -> None:
    gt = read_ground_truth(_write(tmp_path, "gt.json", GT))
    assert gt.rejections == []
    assert gt.categories == {1: "car", 2: "dog"} and all(type(k) is int for k in gt.categories)
    assert [s.data_row_id for s in gt.samples] == ["1", "2"]  # "1", not "1.0"
    assert [(s.width, s.height) for s in gt.samples] == [(640, 480), (640, 480)]
    assert [len(s.boxes) for s in gt.samples] == [1, 1]
    assert gt.samples[1].boxes[0].given_area is None  # a NaN area: w * h, as when absent


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"image_id": 1.5}, "annotation #1: image_id 1.5 is not an integer"),
        ({"category_id": 2.5}, "annotation #1: category_id 2.5 is not an integer"),
        (
            {"category_id": float("inf")},
            "annotation #1: category_id inf is not an id (an integer or a string)",
        ),
        ({"category_id": 7.0}, "annotation #1: unknown category_id 7.0"),
    ],
)
def test_ground_truth_ids_that_are_not_integers_are_named(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    doc = json.loads(json.dumps(GT))
    doc["annotations"][0].update(change)
    gt = read_ground_truth(_write(tmp_path, "gt.json", doc))
    assert [r.detail for r in gt.rejections] == [expected]


def test_an_image_id_that_is_not_an_integer_is_named(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(GT))
    doc["images"][1]["id"] = 2.25
    gt = read_ground_truth(_write(tmp_path, "gt.json", doc))
    details = [r.detail for r in gt.rejections]
    assert details[0] == "image entry: id 2.25 is not an integer"


def _result(**fields: Any) -> dict[str, Any]:
    return {"image_id": 1, "category_id": 1, "bbox": [1.0, 2.0, 10.0, 20.0], "score": 0.5, **fields}


def test_results_with_float_ids_and_non_finite_scores(tmp_path: Path) -> None:
    results = [
        _result(image_id=1.0, category_id=1.0),
        _result(score=float("nan")),
        _result(score=float("inf")),
        _result(image_id=1.5),
        _result(category_id=2.5),
        _result(bbox=[1.0, float("nan"), 10.0, 20.0]),
        _result(image_id=2.0, category_id=2, score=0.25),
    ]
    read = read_results(_write(tmp_path, "res.json", results), categories={1: "car", 2: "dog"})
    assert [
        (p.data_row_id, [(d.box.label, d.score) for d in p.detections]) for p in read.table
    ] == [
        ("1", [("car", 0.5)]),
        ("2", [("dog", 0.25)]),
    ]
    assert [(r.reason, r.detail) for r in read.ignored] == [
        ("invalid_confidence", "result #2: score nan is not a finite number"),
        ("invalid_confidence", "result #3: score inf is not a finite number"),
        ("malformed_row", "result #4: image_id 1.5 is not an integer"),
        ("unknown_class", "result #5: category_id 2.5 is not an integer"),
        ("malformed_row", "result #6: bbox [1.0, nan, 10.0, 20.0] is not [x, y, w, h] "
                          "(finite, w, h >= 0)"),
    ]  # fmt: skip
    assert [r.line for r in read.ignored] == [1] * 5  # one line: the index says which
