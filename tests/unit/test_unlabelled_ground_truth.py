"""A row with no label is not ground truth: `read_evaluation_files` leaves it out and reports it,
and predictions on it (found by data row id, global key or image location, in every prediction
format that names rows) are ``on_unlabelled_row``, never false positives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.builders.labelbox_rows import box_object, project_row
from vmt.errors import InputError
from vmt.formats.evaluation_inputs import read_evaluation_files


def _row(i: int, labels: list[Any] | None) -> dict[str, Any]:
    row = project_row(f"dr-{i}", objects=[box_object("car", 10, 20, 300, 200)])
    row["data_row"].update(global_key=f"gk-{i}", row_data=f"gs://b/img/{i}.jpg")
    if labels is not None:
        row["projects"]["project-1"]["labels"] = labels
        row["projects"]["project-1"]["project_details"] = {"workflow_status": "TO_LABEL"}
    return row


def _lines(*rows: Any) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


def _labelbox(ref: dict[str, str], score: float) -> dict[str, Any]:
    box = {"left": 10.0, "top": 20.0, "width": 300.0, "height": 200.0}
    return {"dataRow": ref, "name": "car", "bbox": box, "confidence": score}


def _vertex(i: int, score: float) -> dict[str, Any]:
    return {
        "instance": {"content": f"gs://b/img/{i}.jpg"},
        "prediction": {"displayNames": ["car"], "confidences": [score],
                       "bboxes": [[0.01, 0.31, 0.04, 0.44]]},
    }  # fmt: skip


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "export.ndjson"
    nothing_in_it = [{"id": "l3", "annotations": {"objects": []}}]
    path.write_bytes(_lines(_row(1, None), _row(2, []), _row(3, nothing_in_it)))
    return path


@pytest.mark.parametrize(
    "predictions",
    [
        [_labelbox({"id": "dr-1"}, 0.8), _labelbox({"id": "dr-2"}, 0.9)],
        [_labelbox({"globalKey": "gk-1"}, 0.8), _labelbox({"globalKey": "gk-2"}, 0.9)],
        [_vertex(1, 0.8), _vertex(2, 0.9)],
    ],
    ids=["labelbox by id", "labelbox by global key", "vertex by image"],
)
def test_predictions_on_a_row_with_no_label_are_not_scored(
    tmp_path: Path, export: Path, predictions: list[dict[str, Any]]
) -> None:
    pred = tmp_path / "pred.ndjson"
    pred.write_bytes(_lines(*predictions))
    files = read_evaluation_files(export, pred)
    assert [s.data_row_id for s in files.evaluated] == ["dr-1", "dr-3"]  # dr-3: no objects
    assert [s.boxes == () for s in files.evaluated] == [False, True]
    [unlabelled] = [r for r in files.ground_truth.rejections if r.reason == "unlabelled_row"]
    assert (unlabelled.line, unlabelled.data_row_id) == (2, "dr-2")
    assert "TO_LABEL" in unlabelled.detail
    assert [(r.reason, r.line) for r in files.predictions.ignored] == [("on_unlabelled_row", 2)]
    assert [p.data_row_id for p in files.predictions.table if p.detections] == ["dr-1"]

    kept = read_evaluation_files(export, pred, keep_unlabelled=True)
    assert kept.predictions.ignored == ()
    assert [p.data_row_id for p in kept.predictions.table if p.detections] == ["dr-1", "dr-2"]
    assert [s.data_row_id for s in kept.evaluated] == ["dr-1", "dr-3"]


def test_ground_truth_with_no_label_at_all_says_so(tmp_path: Path) -> None:
    export = tmp_path / "export.ndjson"
    export.write_bytes(_lines(_row(1, []), _row(2, [])))
    pred = tmp_path / "pred.ndjson"
    pred.write_bytes(b"")
    with pytest.raises(InputError, match="all 2 rows have no label yet"):
        read_evaluation_files(export, pred)
