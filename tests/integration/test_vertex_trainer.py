"""VertexTrainer driven through the real aiplatform and storage SDKs against the fake Vertex REST
server and the GCS emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.gcp import BUCKET, LocalGcp, local_gcp
from tests.fakes.simple_run_context import SimpleRunContext
from tests.fakes.trainer_calls import predict_to_end, predictions_of, train_to_end
from tests.fakes.vertex_samples import HEIGHT, WIDTH, make_samples
from vmt.backends.vertex import VertexTrainer
from vmt.backends.vertex.training import DryRunFinished
from vmt.config import Settings, load_settings
from vmt.domain import Rejection, Sample, Split
from vmt.errors import BackendError, InputError, RunCancelled
from vmt.formats.outbound_policy import OutboundRules
from vmt.pipeline.protocols import Pending
from vmt.vertex_cost import cost_usd


@pytest.fixture
def gcp(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalGcp]:
    with local_gcp() as world:
        for key, value in world.settings_env().items():
            monkeypatch.setenv(key, value)
        yield world


def _settings(**overrides: Any) -> Settings:
    return load_settings(**overrides)


def _trainer(settings: Settings) -> VertexTrainer:
    """The trainer as a CLI run on an export file builds it: its images are local files."""
    return VertexTrainer(settings, outbound=OutboundRules.export_file())


def _prepare(trainer: VertexTrainer, ctx: SimpleRunContext, samples: list[Sample]) -> list[Sample]:
    out = list(trainer.prepare(ctx, samples))
    assert not [r for r in out if isinstance(r, Rejection)]
    return sorted((s for s in out if isinstance(s, Sample)), key=lambda s: s.data_row_id)


def test_full_cycle_through_the_sdk(gcp: LocalGcp, tmp_path: Path) -> None:
    samples = make_samples(tmp_path / "img")
    ctx = SimpleRunContext("run-1", tmp_path / "work")
    trainer = _trainer(_settings())

    staged = _prepare(trainer, ctx, samples)
    assert all(s.image_uri.startswith(f"gs://{BUCKET}/vmt/run-1/images/") for s in staged)
    assert all((s.width, s.height) == (WIDTH, HEIGHT) for s in staged)  # read from the header

    trained = train_to_end(trainer, ctx, staged)
    model = trained.model

    # The import JSONL in the bucket: one line per image, ml_use spelled as Vertex wants.
    lines = [json.loads(x) for x in gcp.read_text("vmt/run-1/vertex_import.jsonl").splitlines()]
    assert len(lines) == len(samples)
    uses = sorted(x["dataItemResourceLabels"]["aiplatform.googleapis.com/ml_use"] for x in lines)
    assert uses == sorted(s.split.value for s in samples)
    first = next(x for x in lines if x["imageGcsUri"].endswith("/row000.png"))
    assert first["boundingBoxAnnotations"][0] == {
        "displayName": "car",
        "xMin": 4 / WIDTH,
        "yMin": 2 / HEIGHT,
        "xMax": 24 / WIDTH,
        "yMax": 30 / HEIGHT,
    }
    assert gcp.vertex.imports  # the dataset was imported from that file
    [imported] = gcp.vertex.imports.values()
    assert imported == [f"gs://{BUCKET}/vmt/run-1/vertex_import.jsonl"]

    # The training inputs as Vertex received them.
    [body] = gcp.vertex.bodies("trainingPipelines")
    assert body["trainingTaskInputs"]["modelType"] == "CLOUD_HIGH_ACCURACY_1"
    assert body["trainingTaskInputs"]["budgetMilliNodeHours"] == 20000
    assert body["trainingTaskDefinition"].endswith("automl_image_object_detection_1.0.0.yaml")
    ml_use = "labels.aiplatform.googleapis.com/ml_use"
    assert body["inputDataConfig"]["filterSplit"] == {
        "trainingFilter": f"{ml_use}=training",
        "validationFilter": f"{ml_use}=validation",
        "testFilter": f"{ml_use}=test",
    }
    assert body["labels"] == {"vmt-run-id": "run-1"}
    assert gcp.vertex.bodies("datasets")[0]["labels"] == {"vmt-run-id": "run-1"}
    assert model.startswith("projects/test-project/locations/us-central1/models/")
    assert trained.cost_usd == pytest.approx(cost_usd(15000), abs=0.01)
    assert trained.summary["stop_reason"] == "MODEL_CONVERGED"
    assert any(m == "vertex training cost" and d["max_cost_usd"] == 69.3 for m, d in ctx.events)

    # Batch prediction over validation + test only; boxes come back near the truth, in pixels.
    wanted = [s for s in staged if s.split in (Split.VALIDATION, Split.TEST)]
    rows = predict_to_end(trainer, ctx, model, wanted)
    predictions = {p.data_row_id: p for p in predictions_of(rows)}
    assert len(rows) == len(predictions)  # nothing failed
    assert set(predictions) == {s.data_row_id for s in wanted}
    [job] = gcp.vertex.bodies("batchPredictionJobs")
    assert job["modelParameters"] == {"confidenceThreshold": 0.0, "maxPredictions": 100}
    instances = gcp.read_text("vmt/run-1/batch/instances.jsonl").splitlines()
    assert len(instances) == len(wanted)
    truth = {s.data_row_id: s for s in wanted}
    matched = 0
    for row_id, prediction in predictions.items():
        for detection in prediction.detections:
            if detection.score < 0.5:
                continue  # the fake's deliberate false positives
            gt = next(b for b in truth[row_id].boxes if b.label == detection.box.label)
            assert detection.box.x0 == pytest.approx(gt.x0, abs=2.5)
            assert detection.box.x1 == pytest.approx(gt.x1, abs=2.5)
            assert detection.box.y0 == pytest.approx(gt.y0, abs=2.5)
            assert detection.box.y1 == pytest.approx(gt.y1, abs=2.5)
            matched += 1
    assert matched >= len(wanted)  # most of the 2 boxes per image survive the fake's noise

    evaluation = trained.evaluation
    assert evaluation is not None
    assert evaluation["boundingBoxMeanAveragePrecision"] == 0.71
    assert evaluation["model"] == model


class _CrashAfterCreate(SimpleRunContext):
    """Dies (like a killed process) right after Vertex created ``crash_on``, before it is saved."""

    crash_on = ""

    def set_handle(self, key: str, value: str) -> None:
        if key == self.crash_on:
            raise KeyboardInterrupt(f"crashed before saving {key}")
        super().set_handle(key, value)


@pytest.mark.parametrize("crash_on", ["vertex.dataset", "vertex.training_pipeline"])
def test_crash_between_create_and_persist_creates_nothing_twice(
    gcp: LocalGcp, tmp_path: Path, crash_on: str
) -> None:
    samples = make_samples(tmp_path / "img")
    trainer = _trainer(_settings())
    ctx = SimpleRunContext("run-crash", tmp_path / "work")
    staged = _prepare(trainer, ctx, samples)

    crashing = _CrashAfterCreate("run-crash", tmp_path / "work")
    crashing.crash_on = crash_on
    with pytest.raises(KeyboardInterrupt):
        train_to_end(trainer, crashing, staged)
    assert ctx.get_handle(crash_on) is None

    # A new process (new trainer, same run) finds the resources by their run label.
    trained = train_to_end(
        _trainer(_settings()), SimpleRunContext("run-crash", tmp_path / "work"), staged
    )
    assert trained.model
    assert gcp.vertex.creates("datasets") == 1
    assert gcp.vertex.creates("trainingPipelines") == 1
    assert ctx.get_handle(crash_on) is not None


def test_failed_training_fails_with_vertex_message(gcp: LocalGcp, tmp_path: Path) -> None:
    gcp.vertex.fail_training = "Training pipeline failed: not enough quota in us-central1"
    trainer = _trainer(_settings())
    ctx = SimpleRunContext("run-fail", tmp_path / "work")
    staged = _prepare(trainer, ctx, make_samples(tmp_path / "img"))
    with pytest.raises(BackendError, match="not enough quota in us-central1"):
        train_to_end(trainer, ctx, staged)


def test_class_with_nine_training_images_stops_before_any_dataset(
    gcp: LocalGcp, tmp_path: Path
) -> None:
    samples = make_samples(tmp_path / "img", training=12, short_label=("bike", 9))
    trainer = _trainer(_settings())
    ctx = SimpleRunContext("run-short", tmp_path / "work")
    with pytest.raises(InputError, match="fewer than 10 training images: bike"):
        list(trainer.prepare(ctx, samples))
    with pytest.raises(InputError, match="fewer than 10 training images: bike"):
        trainer.train(ctx, samples)
    assert gcp.vertex.requests == []
    assert gcp.names("vmt/run-short/") == []  # failed before copying a single image


def test_streamed_rows_are_staged_whatever_the_limits_and_train_refuses_them(
    gcp: LocalGcp, tmp_path: Path
) -> None:
    # Rows streamed to prepare may be only predicted (a pool): training limits are train's.
    samples = make_samples(tmp_path / "img", training=12, short_label=("bike", 9))
    trainer = _trainer(_settings())
    ctx = SimpleRunContext("run-stream", tmp_path / "work")
    staged = [s for s in trainer.prepare(ctx, iter(samples)) if isinstance(s, Sample)]
    assert len(staged) == len(samples)
    assert len(gcp.names("vmt/run-stream/images/")) == len(samples)
    with pytest.raises(InputError, match="fewer than 10 training images: bike"):
        trainer.train(ctx, staged)
    assert gcp.vertex.requests == []  # nothing created in Vertex


def test_dry_run_does_everything_but_launch(gcp: LocalGcp, tmp_path: Path) -> None:
    trainer = _trainer(_settings(vertex_dry_run=True))
    ctx = SimpleRunContext("run-dry", tmp_path / "work")
    staged = _prepare(trainer, ctx, make_samples(tmp_path / "img"))
    with pytest.raises(DryRunFinished, match=r"maximum cost about 69\.30 USD"):
        train_to_end(trainer, ctx, staged)
    assert gcp.vertex.creates("trainingPipelines") == 0
    saved = json.loads((ctx.workdir / "vertex_training_pipeline.json").read_text())
    assert saved["trainingTaskInputs"]["budgetMilliNodeHours"] == 20000
    # The real run afterwards re-uses the dataset the dry run imported.
    train_to_end(_trainer(_settings()), ctx, staged)
    assert gcp.vertex.creates("datasets") == 1
    assert gcp.vertex.creates("trainingPipelines") == 1


def test_train_launches_then_answers_pending_without_waiting(gcp: LocalGcp, tmp_path: Path) -> None:
    gcp.vertex.training_polls = 1000
    trainer = _trainer(_settings(vertex_poll_seconds=7.0, vertex_poll_max_seconds=60.0))
    ctx = SimpleRunContext("run-pending", tmp_path / "work")
    staged = _prepare(trainer, ctx, make_samples(tmp_path / "img"))
    first = trainer.train(ctx, staged)
    assert isinstance(first, Pending) and first.seconds == 7.0
    assert "RUNNING" in first.what or "QUEUED" in first.what or "PENDING" in first.what
    again = _trainer(_settings(vertex_poll_seconds=7.0, vertex_poll_max_seconds=60.0)).train(
        ctx, staged
    )
    assert isinstance(again, Pending)
    assert gcp.vertex.creates("trainingPipelines") == 1


def test_cancel_stops_the_training_pipeline(gcp: LocalGcp, tmp_path: Path) -> None:
    gcp.vertex.training_polls = 1000
    trainer = _trainer(_settings())
    ctx = SimpleRunContext("run-cancel", tmp_path / "work")
    staged = _prepare(trainer, ctx, make_samples(tmp_path / "img"))
    assert isinstance(trainer.train(ctx, staged), Pending)
    trainer.cancel(ctx)
    pipeline = ctx.get_handle("vertex.training_pipeline")
    assert any(r.path.endswith(f"{pipeline}:cancel") for r in gcp.vertex.requests)
    with pytest.raises(RunCancelled, match="was cancelled"):
        train_to_end(trainer, ctx, staged)


def test_batch_errors_are_reported_not_fatal(gcp: LocalGcp, tmp_path: Path) -> None:
    trainer = _trainer(_settings())
    ctx = SimpleRunContext("run-errors", tmp_path / "work")
    staged = _prepare(trainer, ctx, make_samples(tmp_path / "img"))
    model = train_to_end(trainer, ctx, staged).model
    wanted = [s for s in staged if s.split is not Split.TRAINING]
    gcp.vertex.error_uris = {wanted[0].image_uri}
    rows = predict_to_end(trainer, ctx, model, wanted)
    predicted = {p.data_row_id for p in predictions_of(rows)}
    assert predicted == {s.data_row_id for s in wanted[1:]}
    [(_, read)] = [(m, d) for m, d in ctx.events if m == "vertex predictions read"]
    assert read["failed_images"] == 1
    assert "could not be decoded" in str(read["errors"])
    # The failed row comes back as a value, which the evaluate stage leaves out of the metrics.
    [failure] = [row for row in rows if isinstance(row, Rejection)]
    assert (failure.reason, failure.data_row_id) == ("prediction_failed", wanted[0].data_row_id)
    assert "INVALID_ARGUMENT" in failure.detail


def test_a_failed_batch_job_is_not_reattached_a_retry_submits_a_new_one(
    gcp: LocalGcp, tmp_path: Path
) -> None:
    trainer = _trainer(_settings())
    ctx = SimpleRunContext("run-batch-retry", tmp_path / "work")
    staged = _prepare(trainer, ctx, make_samples(tmp_path / "img"))
    model = train_to_end(trainer, ctx, staged).model
    wanted = [s for s in staged if s.split is not Split.TRAINING]
    gcp.vertex.fail_batch_jobs = 1
    with pytest.raises(BackendError, match="Quota exceeded"):
        predict_to_end(trainer, ctx, model, wanted)
    failed = ctx.get_handle("vertex.batch_prediction_job")

    # the retry (same run: the failed job is its recorded handle) submits a new job
    predicted = {p.data_row_id for p in predictions_of(predict_to_end(trainer, ctx, model, wanted))}
    assert predicted == {s.data_row_id for s in wanted}
    assert gcp.vertex.creates("batchPredictionJobs") == 2
    assert ctx.get_handle("vertex.batch_prediction_job") not in (None, failed)
    assert any("ended unsuccessfully: not reused" in m for m, _ in ctx.events)

    # a new process without handles finds the succeeded job by its label, not the failed one
    fresh = SimpleRunContext("run-batch-retry", tmp_path / "fresh")
    again = {
        p.data_row_id
        for p in predictions_of(predict_to_end(_trainer(_settings()), fresh, model, wanted))
    }
    assert again == predicted
    assert gcp.vertex.creates("batchPredictionJobs") == 2


def test_missing_settings_name_what_to_set(tmp_path: Path) -> None:
    from vmt.errors import ConfigError

    with pytest.raises(ConfigError, match="VMT_GCP_PROJECT"):
        _trainer(_settings(gcs_bucket="b"))


def test_run_ids_that_are_not_label_values_still_label(gcp: LocalGcp, tmp_path: Path) -> None:
    trainer = _trainer(_settings())
    ctx = SimpleRunContext("Run 2026/01 ÜBER", tmp_path / "work")
    staged = _prepare(trainer, ctx, make_samples(tmp_path / "img"))
    train_to_end(trainer, ctx, [replace(s) for s in staged])
    label = gcp.vertex.bodies("trainingPipelines")[0]["labels"]["vmt-run-id"]
    assert label.startswith("run-2026-01-ber-") and len(label) <= 63
