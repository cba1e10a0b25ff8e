from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from vmt.detection_table import KnownRows
from vmt.domain import Box, Detection, Prediction, Sample, Split
from vmt.errors import InputError
from vmt.formats.coco import (
    ground_truth_document,
    read_ground_truth,
    read_results,
    results_document,
)

SAMPLES = [
    Sample("a", "a.jpg", 100, 80, Split.TEST, (Box("car", 1, 2, 11, 22), Box("dog", 0, 0, 5, 5)),
           global_key="a.jpg"),
    Sample("b", "b.jpg", 50, 50, Split.TEST, (), global_key="b.jpg"),
]  # fmt: skip


def test_ground_truth_round_trip(tmp_path: Path) -> None:
    doc = ground_truth_document(SAMPLES, ["car", "dog"])
    assert doc["annotations"][0] == {
        "id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20], "area": 200,
        "iscrowd": 0,
    }  # fmt: skip
    path = tmp_path / "gt.json"
    path.write_bytes(orjson.dumps(doc))
    back = read_ground_truth(path)
    assert back.rejections == []
    assert back.categories == {1: "car", 2: "dog"}
    assert [s.data_row_id for s in back.samples] == ["1", "2"]
    assert [(b.label, b.x0, b.y0, b.x1, b.y1) for b in back.samples[0].boxes] == [
        (b.label, b.x0, b.y0, b.x1, b.y1) for b in SAMPLES[0].boxes
    ]
    assert [b.given_area for b in back.samples[0].boxes] == [200, 25]
    assert back.samples[0].global_key == "a.jpg"
    assert (back.samples[0].width, back.samples[0].height) == (100, 80)


def test_ground_truth_problems_are_reported_not_raised(tmp_path: Path) -> None:
    doc = {
        "images": [{"id": 1, "file_name": "x.jpg", "width": 10, "height": 10}],
        "categories": [{"id": 1, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]},
            {"id": 2, "image_id": 1, "category_id": 9, "bbox": [0, 0, 2, 2]},  # unknown cat
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2]},  # bad bbox
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "iscrowd": 1},
            {"id": 5, "image_id": 7, "category_id": 1, "bbox": [0, 0, 2, 2]},  # no such image
        ],
    }
    path = tmp_path / "gt.json"
    path.write_bytes(orjson.dumps(doc))
    gt = read_ground_truth(path)
    assert [b.crowd for b in gt.samples[0].boxes] == [False, True]  # crowd: an ignore region
    assert sorted(r.reason for r in gt.rejections) == [
        "malformed_annotation", "unknown_class", "unknown_image",
    ]  # fmt: skip


def test_results(tmp_path: Path) -> None:
    preds = [Prediction("a", (Detection(Box("car", 1, 2, 11, 22), 0.5),))]
    results = results_document(preds, image_ids={"a": 1}, category_ids={"car": 1})
    assert results == [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20], "score": 0.5}]
    results += [
        {"image_id": 1, "category_id": 5, "bbox": [1, 2, 3, 4], "score": 0.5},  # unknown cat
        {"image_id": 9, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},  # unknown image
        {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},  # no score
        "junk",
    ]
    path = tmp_path / "res.json"
    path.write_bytes(orjson.dumps(results))
    gt_samples = [Sample("1", "a.jpg", 100, 80, Split.UNASSIGNED, ())]
    known = KnownRows.from_samples(gt_samples, {"1"}, {"car"})
    read = read_results(path, categories={1: "car"}, known=known)
    assert len(read.table) == 1
    assert sorted(r.reason for r in read.ignored) == [
        "invalid_confidence", "malformed_row", "unknown_class", "unknown_data_row",
    ]  # fmt: skip


def test_not_coco(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b"{not json")
    with pytest.raises(InputError, match="not JSON"):
        read_ground_truth(path)
    path.write_bytes(b"{}")
    with pytest.raises(InputError, match="images"):
        read_ground_truth(path)
    assert [r.reason for r in read_results(path, categories={}).ignored] == ["malformed_row"]
