from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from vmt.detection_table import KnownRows
from vmt.domain import Box, Detection, Prediction, Sample, Split
from vmt.formats.labelbox_predictions import (
    deterministic_uuids,
    prediction_rows,
    read_predictions,
)

SAMPLES = [
    Sample("r1", "u1", 100, 100, Split.TEST, (Box("car", 0, 0, 10, 10),), global_key="k1"),
    Sample("r2", "u2", 100, 100, Split.VALIDATION, (Box("dog", 0, 0, 10, 10),), global_key="k2"),
    Sample("r3", "u3", 100, 100, Split.TRAINING, (Box("car", 0, 0, 10, 10),), global_key="k3"),
]
KNOWN = KnownRows.from_samples(SAMPLES, {"r1", "r2"}, {"car", "dog"})


def row(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "uuid": "u",
        "dataRow": {"id": "r1"},
        "name": "car",
        "bbox": {"top": 20.0, "left": 10.0, "height": 50.0, "width": 100.0},
        "confidence": 0.87,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_writer_rows_round_trip_through_the_reader(tmp_path: Path) -> None:
    prediction = Prediction(
        "r1",
        (
            Detection(Box("car", 10.0, 20.0, 110.0, 70.0), 0.87),
            Detection(Box("dog", 1.5, 2.5, 3.5, 4.5), 1.2),  # clamped to 1.0 on the way out
        ),
    )
    uuid_for = deterministic_uuids("run-1")
    rows = list(prediction_rows(prediction, uuid_for=uuid_for))
    assert rows[0] == {
        "uuid": uuid_for("r1", 0),
        "dataRow": {"id": "r1"},
        "name": "car",
        "bbox": {"top": 20.0, "left": 10.0, "height": 50.0, "width": 100.0},
        "confidence": 0.87,
    }
    assert rows[1]["confidence"] == 1.0
    # the same run gives the same uuids; another run other ones
    assert [r["uuid"] for r in prediction_rows(prediction, uuid_for=uuid_for)] == [
        r["uuid"] for r in rows
    ]
    assert deterministic_uuids("run-2")("r1", 0) != rows[0]["uuid"]
    path = tmp_path / "p.ndjson"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    read = read_predictions(path, KNOWN)
    assert read.ignored == ()
    [back] = list(read.table)
    assert back.detections[0] == prediction.detections[0]
    assert back.detections[1].score == 1.0


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        # a good row
        (orjson.dumps(row()), None),
        # integers are numbers too
        (orjson.dumps(row(bbox={"top": 1, "left": 2, "height": 3, "width": 4}, confidence=1)),
         None),
        # referenced by global key
        (orjson.dumps(row(dataRow={"globalKey": "k2"}, name="dog")), None),
        # no confidence: kept as 1.0, with a warning
        (orjson.dumps(row(confidence=None)), None),
        # broken JSON
        (b'{"dataRow": {"id": "r1"', "malformed_json"),
        # JSON but not an object (a JSON array file holding one array)
        (b"[[1, 2]]", "malformed_row"),
        # unknown data row
        (orjson.dumps(row(dataRow={"id": "nope"})), "unknown_data_row"),
        # unknown global key
        (orjson.dumps(row(dataRow={"globalKey": "nope"})), "unknown_data_row"),
        # a training row: not evaluated
        (orjson.dumps(row(dataRow={"id": "r3"})), "row_not_in_evaluated_splits"),
        # a class the ground truth does not have
        (orjson.dumps(row(name="zebra")), "unknown_class"),
        # schemaId only: no name to compare
        (orjson.dumps(row(name=None, schemaId="ckx")), "missing_name"),
        # a classification, not a box
        (orjson.dumps(row(bbox=None, answer={"name": "x"})), "not_a_box"),
        # negative width
        (orjson.dumps(row(bbox={"top": 1.0, "left": 2.0, "height": 3.0, "width": -4.0})),
         "box_invalid"),
        # a coordinate that is a string
        (orjson.dumps(row(bbox={"top": "1", "left": 2.0, "height": 3.0, "width": 4.0})),
         "box_invalid"),
        # confidence out of range
        (orjson.dumps(row(confidence=1.5)), "invalid_confidence"),
        # no dataRow
        (orjson.dumps(row(dataRow=None)), "missing_data_row"),
    ],
)  # fmt: skip
def test_reader_lines(tmp_path: Path, line: bytes, reason: str | None) -> None:
    path = tmp_path / "p.ndjson"
    path.write_bytes(b"\n" + line + b"\n")  # a blank first line: numbering still counts it
    read = read_predictions(path, KNOWN)
    if reason is None:
        assert read.ignored == ()
        assert len(read.table) == 1
    else:
        assert [(r.reason, r.line) for r in read.ignored] == [(reason, 2)]
        assert len(read.table) == 0


def test_missing_confidence_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "p.ndjson"
    path.write_bytes(orjson.dumps(row(confidence=None)) + b"\n")
    read = read_predictions(path, KNOWN)
    assert [w.reason for w in read.warnings] == ["missing_confidence"]
    assert read.table.score.tolist() == [1.0]


def test_fast_and_slow_rows_keep_file_order(tmp_path: Path) -> None:
    # file order decides ties (as in pycocotools): int rows (slow path) must not move
    lines = [
        row(confidence=0.5, bbox={"top": 1.0, "left": 1.0, "height": 1.0, "width": 1.0}),
        row(confidence=0.5, bbox={"top": 2, "left": 2, "height": 2, "width": 2}),
        row(confidence=0.5, bbox={"top": 3.0, "left": 3.0, "height": 3.0, "width": 3.0}),
    ]
    path = tmp_path / "p.ndjson"
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    read = read_predictions(path, KNOWN)
    assert read.table.xyxy[:, 0].tolist() == [1.0, 2.0, 3.0]
