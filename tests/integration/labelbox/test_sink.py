"""LabelboxSink (and the source) through the real SDK against the fake Labelbox: statuses,
chunked prediction and metric uploads, idempotent retries, faults, authentication."""

from __future__ import annotations

import json
import logging
import math
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.labelbox_server import (
    AUTH,
    FATAL,
    HTTP_500_FILE,
    HTTP_503,
    RATE_LIMIT,
    FakeLabelbox,
    make_export_row,
)
from tests.integration.labelbox.conftest import FAST_BACKOFF, FileRunContext, settings_for
from vmt.backends.labelbox import LabelboxSink, LabelboxSource
from vmt.backends.labelbox.sink import FAILURES_FILE
from vmt.config import load_settings
from vmt.domain import Box, Detection, Prediction, Sample, Split
from vmt.errors import AuthError, BackendError, ConfigError, NotFoundError
from vmt.evaluation import evaluate, row_metric_rows
from vmt.pipeline.protocols import RunStatus

MR = "mr-sink"
CREATE = "createMEAPredictionImportByFilePyApi"


def _setup(fake: FakeLabelbox, rows: int = 30) -> None:
    fake.add_model_run(
        MR,
        rows=[make_export_row(i, model_run_id=MR) for i in range(rows)],
        classes=["car", "person"],
    )


def _prediction(i: int, name: str = "car", data_row: str | None = None) -> dict[str, Any]:
    return {
        "uuid": str(uuid.UUID(int=i)),
        "dataRow": {"id": data_row or f"dr-{i:06d}"},
        "name": name,
        "bbox": {"top": 20.0 + i, "left": 10.0, "height": 50.5, "width": 100.0},
        "confidence": round(0.5 + i / 100, 4),
    }


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _row_metric_rows(run_id: str) -> list[dict[str, Any]]:
    """Per-row metrics as the pipeline makes them: the real evaluation of two data rows."""
    car = Box.from_ltwh("car", 10.0, 20.0, 100.0, 50.0)
    person = Box.from_ltwh("person", 200.0, 100.0, 40.0, 120.0)
    samples = [
        Sample("dr-000000", "a.png", 640, 480, Split.VALIDATION, (car, person)),
        Sample("dr-000001", "b.png", 640, 480, Split.TEST, (car,)),
    ]
    predictions = [
        Prediction("dr-000000", (Detection(car, 0.9),)),
        Prediction("dr-000001", (Detection(car, 0.8), Detection(person, 0.4))),
    ]
    return list(row_metric_rows(evaluate(samples, predictions), namespace=run_id))


def _results(ctx: FileRunContext, predictions: list[dict[str, Any]]) -> dict[str, Path | None]:
    metrics = ctx.workdir / "metrics.json"
    metrics.write_text(json.dumps({"map": 0.5, "ap50": 0.7}))
    (ctx.workdir / "report").mkdir(exist_ok=True)
    return {
        "predictions": _write(ctx.workdir / "predictions.ndjson", predictions),
        "metrics": metrics,
        "row_metrics": _write(ctx.workdir / "row_metrics.ndjson", _row_metric_rows(ctx.run_id)),
        "report": ctx.workdir / "report" / "index.html",
    }


def _publish(sink: LabelboxSink, ctx: FileRunContext, results: dict[str, Path | None]) -> None:
    sink.publish(
        ctx,
        predictions=results["predictions"],  # type: ignore[arg-type]
        metrics=results["metrics"],  # type: ignore[arg-type]
        row_metrics=results["row_metrics"],
        report=results["report"],
    )


def _run_whole_loop(fake: FakeLabelbox, ctx: FileRunContext, **settings: object) -> None:
    """What the runner does with a Labelbox source and sink, in order."""
    config = settings_for(fake, **settings)
    source = LabelboxSource(config, MR, backoff=FAST_BACKOFF)
    sink = LabelboxSink(config, MR, backoff=FAST_BACKOFF)
    sink.report_status(ctx, RunStatus.EXPORTING_DATA, metadata={"stage": "export"})
    source.export(ctx, ctx.workdir / "export.ndjson")
    sink.report_status(
        ctx, RunStatus.PREPARING_DATA, metadata={"stage": "prepare", "rows": 30, "trainer": "local"}
    )
    sink.report_status(ctx, RunStatus.TRAINING_MODEL, metadata={"stage": "train"})
    _publish(sink, ctx, _results(ctx, [_prediction(i) for i in range(25)]))
    sink.report_status(
        ctx,
        RunStatus.COMPLETE,
        metadata={"stage": "publish", "mAP": 0.5, "AP50": 0.7, "report": Path("/r/index.html")},
    )


def test_a_successful_run_reports_each_status_with_metadata(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext, caplog: pytest.LogCaptureFixture
) -> None:
    _setup(fake_labelbox)
    with caplog.at_level(logging.DEBUG):
        _run_whole_loop(fake_labelbox, ctx, prediction_chunk_size=10)
    assert "labelbox: status update to COMPLETE" in caplog.text
    assert fake_labelbox.api_key not in caplog.text + json.dumps(ctx.events, default=str)

    statuses = fake_labelbox.statuses(MR)
    assert [s["status"] for s in statuses] == [
        "EXPORTING_DATA",
        "PREPARING_DATA",
        "TRAINING_MODEL",
        "COMPLETE",
    ]
    assert all(s["metadata"]["vmt_run_id"] == "run-1" for s in statuses)
    assert statuses[1]["metadata"]["trainer"] == "local"
    final = statuses[-1]["metadata"]
    assert final["mAP"] == 0.5 and final["AP50"] == 0.7 and final["report"] == "/r/index.html"
    assert final["labelbox_predictions_rows"] == 25
    assert final["labelbox_predictions_imports"] == 3
    sent_metrics = _row_metric_rows(ctx.run_id)
    assert final["labelbox_metrics_rows"] == len(sent_metrics)
    assert final["labelbox_predictions_failed_rows"] == 0
    assert all("errorMessage" not in s for s in statuses)
    assert fake_labelbox.metrics(MR) == sent_metrics  # unchanged, confusion matrices included
    assert {m["aggregation"] for m in sent_metrics} >= {"CONFUSION_MATRIX", "SUM"}


def test_prediction_rows_carry_confidence_and_pixel_boxes_and_are_chunked(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    _setup(fake_labelbox)
    sink = LabelboxSink(
        settings_for(fake_labelbox, prediction_chunk_size=10), MR, backoff=FAST_BACKOFF
    )
    sent = [_prediction(i) for i in range(25)]
    _publish(sink, ctx, _results(ctx, sent))

    predictions = sorted(
        (i for i in fake_labelbox.imports_for(MR) if "-predictions-" in i.name),
        key=lambda i: i.name,
    )
    assert [i.name for i in predictions] == [f"vmt-run-1-predictions-{k}" for k in range(3)]
    assert [len(i.rows) for i in predictions] == [10, 10, 5]
    received = [row for imp in predictions for row in imp.rows]
    assert received == sent  # unchanged: uuid, dataRow id, name, pixel bbox, confidence
    assert all(0 <= r["confidence"] <= 1 and r["bbox"]["height"] == 50.5 for r in received)
    metrics = [i.name for i in fake_labelbox.imports_for(MR) if "-metrics-" in i.name]
    chunks = math.ceil(len(_row_metric_rows(ctx.run_id)) / 10)
    assert sorted(metrics) == sorted(f"vmt-run-1-metrics-{k}" for k in range(chunks))


def test_unknown_classes_are_left_out_and_row_failures_collected(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    _setup(fake_labelbox)
    sent = [
        _prediction(0),
        _prediction(1, name="truck"),  # not in the ontology: left out, reported
        _prediction(2, name="truck"),
        _prediction(3, data_row="dr-not-in-run"),  # Labelbox rejects the row
        _prediction(4, name="person"),
    ]
    results = _results(ctx, sent)
    sink = LabelboxSink(settings_for(fake_labelbox), MR, backoff=FAST_BACKOFF)
    _publish(sink, ctx, results)
    sink.report_status(ctx, RunStatus.COMPLETE, metadata={})

    assert [r["uuid"] for r in fake_labelbox.predictions(MR)] == [sent[0]["uuid"], sent[4]["uuid"]]
    left_out = [d for m, d in ctx.events if m.startswith("predicted classes missing")]
    assert left_out == [{"classes": {"truck": 2}}]
    failures = [d["failure"] for m, d in ctx.events if m == "labelbox rejected a row"]
    assert [f["uuid"] for f in failures] == [sent[3]["uuid"]]  # type: ignore[index]
    failures_file = ctx.workdir / "report" / FAILURES_FILE
    assert [json.loads(x)["uuid"] for x in failures_file.read_text().splitlines()] == [
        sent[3]["uuid"]
    ]
    final = fake_labelbox.statuses(MR)[-1]["metadata"]
    assert final["labelbox_classes_left_out"] == "truck"
    assert final["labelbox_predictions_failed_rows"] == 1
    assert final["labelbox_import_errors"] == str(failures_file)


def test_a_model_that_predicted_nothing_still_gets_its_metrics_and_says_so(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    _setup(fake_labelbox)
    sink = LabelboxSink(settings_for(fake_labelbox), MR, backoff=FAST_BACKOFF)
    _publish(sink, ctx, _results(ctx, []))
    sink.report_status(ctx, RunStatus.COMPLETE, metadata={})

    assert [i.name for i in fake_labelbox.imports_for(MR)] == ["vmt-run-1-metrics-0"]
    assert fake_labelbox.operations().count(CREATE) == 1  # no empty prediction import
    assert "no predictions to upload: the model predicted no boxes on any row" in ctx.messages()
    final = fake_labelbox.statuses(MR)[-1]["metadata"]
    assert final["labelbox_predictions_rows"] == final["labelbox_predictions_imports"] == 0
    assert final["labelbox_metrics_rows"] == len(fake_labelbox.metrics(MR)) > 0


def test_a_failed_run_gets_one_short_line_without_the_key(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    _setup(fake_labelbox)
    settings = settings_for(fake_labelbox)
    key = settings.labelbox_api_key.get_secret_value()  # type: ignore[union-attr]
    sink = LabelboxSink(settings, MR, backoff=FAST_BACKOFF)
    error = f"train failed: class 'car' has 3 training images (Vertex needs 10)\n key={key} " + (
        "x" * 600
    )
    sink.report_status(ctx, RunStatus.FAILED, metadata={"stage": "train"}, error=error)

    (status,) = fake_labelbox.statuses(MR)
    assert status["status"] == "FAILED"
    message = status["errorMessage"]
    assert len(message) <= 255 and "\n" not in message
    assert message.startswith("train failed: class 'car' has 3 training images (Vertex needs 10)")
    assert key not in message and key not in json.dumps(ctx.events)


def test_a_publish_that_died_half_way_is_retried_without_duplicate_imports(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    _setup(fake_labelbox)
    settings = settings_for(fake_labelbox, prediction_chunk_size=5)
    results = _results(ctx, [_prediction(i) for i in range(23)])
    fake_labelbox.inject(CREATE, FATAL, after=2)  # the third chunk's upload fails hard
    with pytest.raises(BackendError):
        _publish(LabelboxSink(settings, MR, backoff=FAST_BACKOFF), ctx, results)
    assert len(fake_labelbox.imports_for(MR)) == 2

    # the local markers are gone too (another machine resumes): Labelbox is asked by name
    for marker in (ctx.workdir / "labelbox_imports").glob("*.ndjson"):
        marker.unlink()
    restarted = FileRunContext(ctx.run_id, ctx.workdir)
    _publish(LabelboxSink(settings, MR, backoff=FAST_BACKOFF), restarted, results)

    names = [i.name for i in fake_labelbox.imports_for(MR)]
    assert len(names) == len(set(names)) == 5 + math.ceil(len(_row_metric_rows(ctx.run_id)) / 5)
    assert sorted(r["uuid"] for r in fake_labelbox.predictions(MR)) == sorted(
        str(uuid.UUID(int=i)) for i in range(23)
    )
    assert restarted.messages().count("labelbox import already exists: not uploaded again") == 2


def test_rate_limits_and_503s_are_retried_and_the_run_completes(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    _setup(fake_labelbox)
    fake_labelbox.inject("setPipelineStatusPyApi", RATE_LIMIT, times=2)
    fake_labelbox.inject("GetModelRunPyApi", RATE_LIMIT)
    fake_labelbox.inject("exportDataRowsInModelRunPyApi", RATE_LIMIT)
    fake_labelbox.inject("GetExportFileFromOffsetPyApi", HTTP_503)  # the SDK retries this itself
    fake_labelbox.inject("file:export", HTTP_500_FILE)
    fake_labelbox.inject(CREATE, RATE_LIMIT, after=1)
    fake_labelbox.inject("getModelErrorAnalysisPredictionImportPyApi", HTTP_503, after=2)
    fake_labelbox.inject("file:import", HTTP_503)

    _run_whole_loop(fake_labelbox, ctx, prediction_chunk_size=10)

    faulted = [r.operation for r in fake_labelbox.requests if r.fault]
    assert len(faulted) == 9
    assert [s["status"] for s in fake_labelbox.statuses(MR)][-1] == "COMPLETE"
    assert len(fake_labelbox.predictions(MR)) == 25
    names = [i.name for i in fake_labelbox.imports_for(MR)]
    assert len(names) == len(set(names))


def test_a_bad_api_key_fails_at_once_with_a_clear_message(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    _setup(fake_labelbox)
    bad_key = "not-the-right-key-123"
    sink = LabelboxSink(
        settings_for(fake_labelbox, labelbox_api_key=bad_key), MR, backoff=FAST_BACKOFF
    )
    with pytest.raises(AuthError) as raised:
        sink.report_status(ctx, RunStatus.EXPORTING_DATA, metadata={})
    assert str(raised.value).startswith(f"LABELBOX_API_KEY is not valid for model run {MR}")
    assert bad_key not in str(raised.value)
    assert len(fake_labelbox.requests) == 1  # not retried


def test_an_auth_failure_mid_run_is_not_retried(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    _setup(fake_labelbox)
    fake_labelbox.inject("exportDataRowsInModelRunPyApi", AUTH, times=5)
    source = LabelboxSource(settings_for(fake_labelbox), MR, backoff=FAST_BACKOFF)
    with pytest.raises(AuthError):
        source.export(ctx, ctx.workdir / "export.ndjson")
    assert fake_labelbox.operations().count("exportDataRowsInModelRunPyApi") == 1


def test_an_unknown_model_run_is_not_found(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    source = LabelboxSource(settings_for(fake_labelbox), "mr-missing", backoff=FAST_BACKOFF)
    with pytest.raises(NotFoundError) as raised:
        source.export(ctx, ctx.workdir / "export.ndjson")
    # what is missing comes first (the runner's failure message may cut the end off)
    assert str(raised.value).startswith(
        "Labelbox has no model run mr-missing that LABELBOX_API_KEY can see: check the model run id"
    )
    sink = LabelboxSink(settings_for(fake_labelbox), "mr-missing", backoff=FAST_BACKOFF)
    with pytest.raises(NotFoundError, match=r"^Labelbox has no model run mr-missing "):
        sink.report_status(ctx, RunStatus.EXPORTING_DATA, metadata={})


def test_a_missing_api_key_is_a_config_error(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    sink = LabelboxSink(settings_for(fake_labelbox, labelbox_api_key=None), MR)
    with pytest.raises(ConfigError, match="LABELBOX_API_KEY"):
        sink.report_status(ctx, RunStatus.EXPORTING_DATA, metadata={})
    assert fake_labelbox.requests == []


_PUBLISH_IN_A_CHILD = """
import json, sys
from pathlib import Path
from tests.integration.labelbox.conftest import FAST_BACKOFF, FileRunContext
from vmt.backends.labelbox import LabelboxSink
from vmt.config import load_settings
from vmt.domain import Box, Detection, Prediction, Sample, Split

args = json.loads(sys.argv[1])
ctx = FileRunContext(args["run_id"], Path(args["workdir"]))
sink = LabelboxSink(load_settings(**args["settings"]), args["model_run"], backoff=FAST_BACKOFF)
paths = {k: Path(v) for k, v in args["results"].items()}
sink.publish(ctx, predictions=paths["predictions"], metrics=paths["metrics"],
             row_metrics=paths["row_metrics"], report=paths["report"])
"""


def test_a_publish_process_killed_mid_upload_is_retried_without_duplicates(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import SRC, cli_env

    _setup(fake_labelbox)
    results = _results(ctx, [_prediction(i) for i in range(23)])
    settings = {
        "labelbox_api_key": fake_labelbox.api_key,
        "labelbox_endpoint": fake_labelbox.endpoint,
        "labelbox_poll_seconds": 0.01,
        "prediction_chunk_size": 5,
    }
    fake_labelbox.import_polls = 3
    args = {
        "run_id": ctx.run_id,
        "workdir": str(ctx.workdir),
        "model_run": MR,
        "settings": settings,
        "results": {k: str(v) for k, v in results.items()},
    }
    child = subprocess.Popen(
        [sys.executable, "-c", _PUBLISH_IN_A_CHILD, json.dumps(args)],
        env=cli_env(PYTHONPATH=f"{SRC}{os.pathsep}{SRC.parent}"),
        stderr=subprocess.DEVNULL,
    )

    def kill_on_third_upload(request: Any) -> None:
        if request.operation == CREATE and fake_labelbox.operations().count(CREATE) == 3:
            os.kill(child.pid, signal.SIGKILL)  # the upload reaches Labelbox, the answer does not

    fake_labelbox.on_request = kill_on_third_upload
    assert child.wait(timeout=60) == -signal.SIGKILL
    fake_labelbox.on_request = None
    assert len(fake_labelbox.imports_for(MR)) == 3  # the third was created, never waited on

    restarted = FileRunContext(ctx.run_id, ctx.workdir)
    _publish(LabelboxSink(load_settings(**settings), MR, backoff=FAST_BACKOFF), restarted, results)

    names = [i.name for i in fake_labelbox.imports_for(MR)]
    assert len(names) == len(set(names)) == 5 + math.ceil(len(_row_metric_rows(ctx.run_id)) / 5)
    assert fake_labelbox.operations().count(CREATE) == len(names)
    assert restarted.messages().count("labelbox import already exists: not uploaded again") == 1
    assert sorted(r["uuid"] for r in fake_labelbox.predictions(MR)) == sorted(
        str(uuid.UUID(int=i)) for i in range(23)
    )


def test_metric_rows_of_classes_missing_from_the_ontology_are_left_out_and_reported(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    _setup(fake_labelbox)
    results = _results(ctx, [_prediction(0)])
    rows = _row_metric_rows(ctx.run_id)
    per_class = next(r for r in rows if r.get("featureName") == "car")
    truck = {**per_class, "uuid": str(uuid.uuid4()), "featureName": "truck"}  # not in ontology
    _write(results["row_metrics"], [*rows, truck])  # type: ignore[arg-type]
    sink = LabelboxSink(settings_for(fake_labelbox), MR, backoff=FAST_BACKOFF)
    _publish(sink, ctx, results)
    sink.report_status(ctx, RunStatus.COMPLETE, metadata={})

    received = fake_labelbox.metrics(MR)
    assert len(received) == len(rows)
    assert all(r.get("featureName") != "truck" for r in received)
    left_out = [d for m, d in ctx.events if m.startswith("per-class metric rows of classes")]
    assert left_out == [{"classes": {"truck": 1}}]
    assert fake_labelbox.statuses(MR)[-1]["metadata"]["labelbox_metric_rows_left_out"] == 1
