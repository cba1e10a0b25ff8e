"""``vmt publish``: predictions made elsewhere into a model run through the real SDK and the fake
Labelbox: missing data rows added to the run, confidence kept, classes missing from the ontology
reported, idempotent on a rerun, per-row metrics with ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tests.fakes.labelbox_server import FakeLabelbox, make_export_row
from vmt.cli import app

MR = "mr-publish"
CREATE = "createMEAPredictionImportByFilePyApi"


def _prediction(data_row: dict[str, str], name: str, score: float, i: int) -> dict[str, Any]:
    return {
        "uuid": f"00000000-0000-0000-0000-{i:012d}",
        "dataRow": data_row,
        "name": name,
        "bbox": {"top": 20.0, "left": 10.0, "height": 40.0, "width": 30.0},
        "confidence": score,
    }


@pytest.fixture
def setup(fake_labelbox: FakeLabelbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rows = [make_export_row(i, model_run_id=MR) for i in range(4)]
    fake_labelbox.add_model_run(
        MR, rows=rows, classes=["car"], data_splits={f"dr-{i:06d}": "TRAINING" for i in range(4)}
    )
    for key, value in {
        "LABELBOX_API_KEY": fake_labelbox.api_key,
        "VMT_LABELBOX_ENDPOINT": fake_labelbox.endpoint,
        "VMT_LABELBOX_POLL_SECONDS": "0.01",
        "VMT_PREDICTION_CHUNK_SIZE": "2",
        "COLUMNS": "250",
    }.items():
        monkeypatch.setenv(key, value)
    predictions = tmp_path / "predictions.ndjson"
    lines = [
        _prediction({"id": "dr-000001"}, "car", 0.9, 1),
        _prediction({"id": "dr-000002"}, "car", 0.4, 2),
        _prediction({"id": "dr-000009"}, "car", 0.7, 3),  # not in the model run yet
        _prediction({"id": "dr-000002"}, "truck", 0.8, 4),  # not in the ontology
    ]
    predictions.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    return predictions


def _vmt(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_publish_adds_missing_rows_keeps_confidence_and_is_idempotent(
    setup: Path, fake_labelbox: FakeLabelbox
) -> None:
    printed = _vmt("publish", "--model-run", MR, "--predictions", str(setup))
    assert fake_labelbox.projects.registered[MR] == ["dr-000009"]
    uploaded = {r["dataRow"]["id"]: r["confidence"] for r in fake_labelbox.predictions(MR)}
    assert uploaded == {"dr-000001": 0.9, "dr-000002": 0.4, "dr-000009": 0.7}
    assert "1 data rows added to the run" in printed and "0 rows rejected" in printed
    assert "truck" in printed  # reported as missing from the ontology
    creates = fake_labelbox.operations().count(CREATE)
    assert creates == 2  # 3 rows in chunks of 2

    _vmt("publish", "--model-run", MR, "--predictions", str(setup))
    assert fake_labelbox.operations().count(CREATE) == creates
    assert len(fake_labelbox.predictions(MR)) == 3


def test_publish_with_ground_truth_adds_per_row_metrics(
    setup: Path, fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    gt = tmp_path / "export.ndjson"
    rows = [make_export_row(i, model_run_id=MR, split="validation") for i in (1, 2, 9)]
    gt.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    printed = _vmt(
        "publish", "--model-run", MR, "--predictions", str(setup), "--ground-truth", str(gt)
    )
    metrics = fake_labelbox.metrics(MR)
    assert {m["dataRow"]["id"] for m in metrics} == {"dr-000001", "dr-000002", "dr-000009"}
    assert "per-row metric rows" in printed


def test_vertex_output_without_ground_truth_says_what_is_missing(
    fake_labelbox: FakeLabelbox, tmp_path: Path, setup: Path
) -> None:
    vertex = tmp_path / "predictions_00001.jsonl"
    vertex.write_bytes(
        orjson.dumps({"instance": {"content": "gs://b/img.png", "mimeType": "image/png"},
                      "prediction": {"ids": ["1"], "displayNames": ["car"], "confidences": [0.5],
                                     "bboxes": [[0.1, 0.2, 0.1, 0.2]]}}) + b"\n"
    )  # fmt: skip
    result = CliRunner().invoke(app, ["publish", "--model-run", MR, "--predictions", str(vertex)])
    assert result.exit_code != 0
    assert "give --ground-truth" in str(result.exception)


def test_publish_with_ground_truth_gives_no_metrics_to_a_row_with_no_label(
    setup: Path, fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    """A row still to label is not an image with no objects: no per-row metrics for it (its
    prediction would be a false positive), but its prediction is still published."""
    gt = tmp_path / "export.ndjson"
    rows = [make_export_row(i, model_run_id=MR, split="validation") for i in (1, 2, 9)]
    for model in rows[2]["experiments"].values():
        for run in model["runs"].values():
            run["labels"] = []
    gt.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    _vmt("publish", "--model-run", MR, "--predictions", str(setup), "--ground-truth", str(gt))
    metrics = fake_labelbox.metrics(MR)
    assert {m["dataRow"]["id"] for m in metrics} == {"dr-000001", "dr-000002"}
    uploaded = {r["dataRow"]["id"] for r in fake_labelbox.predictions(MR)}
    assert uploaded == {"dr-000001", "dr-000002", "dr-000009"}
