"""A custom-trained model registered and batch-predicted through the real
``google-cloud-aiplatform`` SDK against the fake Vertex API and the GCS emulator: the batch job
really starts ``vmt serve-model`` (our serving code) as a local process and posts it the rows."""

from __future__ import annotations

import functools
import http.server
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.builders.detector_model import CLASSES, upload_model_folder, write_model_folder
from tests.fakes import discovery
from tests.fakes.flaky import FaultProxy
from tests.fakes.gcp import BUCKET, LocalGcp, local_gcp
from tests.fakes.simple_run_context import SimpleRunContext
from tests.fakes.trainer_calls import until_done
from tests.faults.test_fake_fidelity import conformance
from vmt.backends.vertex.clients import build_vertex_clients
from vmt.backends.vertex_custom.models import (
    H_BATCH_JOB,
    H_FAILED_JOB,
    H_MODEL,
    CustomBatchPrediction,
    model_id,
    upload_model,
)
from vmt.config import Settings, load_settings
from vmt.domain import Prediction, Rejection, Sample, Split
from vmt.errors import BackendError, RunCancelled
from vmt.pipeline.protocols import Pending
from vmt.reasons import Reason

IMAGE = "us-docker.pkg.dev/test-project/vmt/vmt:test"


@pytest.fixture
def gcp(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalGcp, FaultProxy]]:
    """The local cloud, the Vertex API behind a recording proxy (for the schema check)."""
    with local_gcp() as world:
        proxy = FaultProxy(world.vertex.url).start()
        try:
            for key, value in world.settings_env().items():
                monkeypatch.setenv(key, value)
            monkeypatch.setenv("VMT_VERTEX_API_ENDPOINT", proxy.url)
            monkeypatch.setenv("VMT_PIPELINE_IMAGE", IMAGE)
            monkeypatch.setenv("VMT_VERTEX_CONFIDENCE_THRESHOLD", "0.0")
            monkeypatch.setenv("VMT_VERTEX_MAX_PREDICTIONS", "5")
            monkeypatch.setenv("VMT_VERTEX_CUSTOM_PREDICT_BATCH_SIZE", "2")
            yield world, proxy
        finally:
            proxy.stop()


def _model_uri(world: LocalGcp, tmp_path: Path, run_id: str) -> str:
    folder = write_model_folder(tmp_path / "model")
    uri = f"gs://{BUCKET}/vmt/runs/{run_id}/custom_job/model"
    return upload_model_folder(world.storage, folder, uri)


@pytest.fixture
def web_images(tmp_path: Path) -> Iterator[str]:
    """An http origin on 127.0.0.1 serving ``tmp_path/web``; yields its base URL."""
    folder = tmp_path / "web"
    folder.mkdir()
    Image.new("RGB", (50, 70), (10, 200, 30)).save(folder / "origin.png")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _staged(world: LocalGcp) -> list[Sample]:
    """Rows whose images are in the emulator: 4 images (two rows share one), a text file."""
    bucket = world.storage.bucket(BUCKET)
    samples = []
    sizes = [(96, 48), (40, 120), (64, 64), (33, 17)]
    for index, (width, height) in enumerate(sizes):
        data = io.BytesIO()
        Image.new("RGB", (width, height), (index * 50, 90, 160)).save(data, "PNG")
        bucket.blob(f"staged/{index}.png").upload_from_string(data.getvalue())
        uri = f"gs://{BUCKET}/staged/{index}.png"
        samples.append(Sample(f"row{index}", uri, width, height, Split.VALIDATION, line=index + 1))
    samples.append(Sample("twin", samples[0].image_uri, 96, 48, Split.TEST, line=9))
    bucket.blob("staged/broken.png").upload_from_string(b"not an image")
    samples.append(
        Sample("broken", f"gs://{BUCKET}/staged/broken.png", 10, 10, Split.TEST, line=10)
    )
    return samples


def test_upload_then_batch_prediction_runs_our_serving_code_end_to_end(
    gcp: tuple[LocalGcp, FaultProxy], web_images: str, tmp_path: Path
) -> None:
    world, proxy = gcp
    # the run's outbound policy lets its images come from this origin: the container gets it
    settings = load_settings().model_copy(
        update={"outbound_allow": ["127.0.0.1"], "outbound_allow_http": True}
    )
    clients = build_vertex_clients(settings)
    ctx = SimpleRunContext("run-custom", tmp_path / "work")
    artifact_uri = _model_uri(world, tmp_path, ctx.run_id)

    first = upload_model(ctx, settings, clients, artifact_uri)
    assert isinstance(first, Pending)
    trained = until_done(lambda: upload_model(ctx, settings, clients, artifact_uri))
    assert trained.model.endswith(f"/models/{model_id(ctx.run_id)}")
    assert ctx.get_handle(H_MODEL) == trained.model
    registered = world.vertex.models[trained.model]
    assert registered["artifactUri"] == artifact_uri
    assert registered["labels"] == {"vmt-run-id": "run-custom"}
    assert registered["containerSpec"] == {
        "imageUri": IMAGE,
        "command": ["vmt", "serve-model"],
        "ports": [{"containerPort": 8080}],
        "predictRoute": "/predict",
        "healthRoute": "/health",
        "env": [
            {"name": "VMT_OUTBOUND_ALLOW", "value": "127.0.0.1"},
            {"name": "VMT_OUTBOUND_ALLOW_HTTP", "value": "true"},
        ],
    }

    samples = [
        *_staged(world),
        Sample("web", f"{web_images}/origin.png", 50, 70, Split.TEST, line=11),
        Sample("private", "http://10.1.2.3/secret.png", 50, 70, Split.TEST, line=12),
        Sample("local", str(tmp_path / "web" / "origin.png"), 50, 70, Split.TEST, line=13),
    ]
    batch = CustomBatchPrediction(settings, clients, world.storage)
    rows = list(until_done(lambda: batch.predict(ctx, trained.model, samples)).rows)

    by_row = {row.data_row_id: row for row in rows}
    assert sorted(by_row) == sorted(s.data_row_id for s in samples) and len(rows) == len(samples)
    for sample in [*samples[:5], samples[6]]:
        predicted = by_row[sample.data_row_id]
        assert isinstance(predicted, Prediction)
        assert 0 < len(predicted.detections) <= 5
        for det in predicted.detections:
            assert det.box.label in CLASSES and 0.0 <= det.score <= 1.0
            assert 0 <= det.box.x0 < det.box.x1 <= sample.width
            assert 0 <= det.box.y0 < det.box.y1 <= sample.height
    broken = by_row["broken"]
    assert isinstance(broken, Rejection) and broken.reason == Reason.PREDICTION_FAILED
    assert "image_not_supported" in broken.detail
    refused = by_row["private"]
    assert isinstance(refused, Rejection) and "image_location_refused" in refused.detail
    local = by_row["local"]
    assert isinstance(local, Rejection) and "local image" in local.detail and local.line == 13

    (served,) = world.vertex.custom_models.served
    assert served["AIP_STORAGE_URI"] == artifact_uri
    assert (served["AIP_HEALTH_ROUTE"], served["AIP_PREDICT_ROUTE"]) == ("/health", "/predict")
    (job,) = world.vertex.jobs.values()
    assert job["name"] == ctx.get_handle(H_BATCH_JOB)
    assert job["dedicatedResources"]["machineSpec"] == {"machineType": "n1-standard-4"}
    assert job["modelParameters"] == {"confidence_threshold": 0.0, "max_predictions": 5}
    assert job["manualBatchTuningParameters"] == {"batchSize": 2}
    lines = world.read_text(job["inputConfig"]["gcsSource"]["uris"][0].split("/", 3)[3])
    assert [json.loads(line) for line in lines.splitlines()] == [
        {"image_uri": s.image_uri} for s in samples[:8]
    ]

    methods = {
        m.id.rsplit(".", 1)[-1]
        for ex in proxy.exchanges
        if (m := discovery.load("aiplatform.v1").method_for(ex.method, ex.path.split("?")[0]))
    }
    assert {"upload", "get", "create"} <= methods
    assert conformance(discovery.load("aiplatform.v1"), proxy.exchanges) == []


def test_a_process_that_died_mid_upload_finds_the_same_model_again(
    gcp: tuple[LocalGcp, FaultProxy], tmp_path: Path
) -> None:
    world, _proxy = gcp
    settings = load_settings()
    artifact_uri = _model_uri(world, tmp_path, "run-crash")
    before = SimpleRunContext("run-crash", tmp_path / "first")
    assert isinstance(
        upload_model(before, settings, build_vertex_clients(settings), artifact_uri), Pending
    )

    after = SimpleRunContext("run-crash", tmp_path / "second")  # its handles were lost
    clients = build_vertex_clients(settings)
    trained = until_done(lambda: upload_model(after, settings, clients, artifact_uri))

    assert list(world.vertex.models) == [trained.model]
    assert after.get_handle(H_MODEL) == trained.model
    # asked again while the first upload ran: refused (same model id), no second operation
    assert world.vertex.custom_models.upload_requests >= 2
    assert len(world.vertex.custom_models.uploads) == 1
    requests = world.vertex.custom_models.upload_requests
    again = upload_model(after, settings, clients, artifact_uri)
    assert again.model == trained.model
    assert world.vertex.custom_models.upload_requests == requests


def test_the_serving_image_must_be_configured(tmp_path: Path) -> None:
    settings = Settings(gcp_project="p", gcs_bucket="b", pipeline_image=None)
    ctx = SimpleRunContext("run-x", tmp_path)

    class NoModels:
        parent = "projects/p/locations/us-central1"

        class model:  # shaped as VertexClients.model
            @staticmethod
            def list_models(request: object) -> list[object]:
                return []

            @staticmethod
            def get_model(name: str) -> object:
                from google.api_core.exceptions import NotFound

                raise NotFound("no such model")

    from vmt.errors import ConfigError

    with pytest.raises(ConfigError, match="VMT_PIPELINE_IMAGE"):
        upload_model(ctx, settings, NoModels(), "gs://b/m")  # type: ignore[arg-type]


@pytest.mark.slow  # a second container start; the load failure itself: test_serving.py
def test_a_container_that_cannot_load_its_model_fails_the_job_saying_why(
    gcp: tuple[LocalGcp, FaultProxy], tmp_path: Path
) -> None:
    world, _proxy = gcp
    settings = load_settings()
    clients = build_vertex_clients(settings)
    ctx = SimpleRunContext("run-empty", tmp_path / "work")
    empty = f"gs://{BUCKET}/vmt/runs/run-empty/custom_job/model"  # the job wrote no model
    trained = until_done(lambda: upload_model(ctx, settings, clients, empty))
    batch = CustomBatchPrediction(settings, clients, world.storage)

    with pytest.raises(BackendError, match=r"could not be loaded.*model\.pt") as raised:
        until_done(lambda: batch.predict(ctx, trained.model, _staged(world)[:1]))
    assert "the container exited 1" in str(raised.value)
    assert ctx.get_handle(H_FAILED_JOB) == ctx.get_handle(H_BATCH_JOB)


@pytest.mark.slow  # starts a container
def test_cancelling_the_run_cancels_its_batch_job_and_stops_the_container(
    gcp: tuple[LocalGcp, FaultProxy], tmp_path: Path
) -> None:
    world, _proxy = gcp
    settings = load_settings()
    clients = build_vertex_clients(settings)
    ctx = SimpleRunContext("run-cancel", tmp_path / "work")
    artifact_uri = _model_uri(world, tmp_path, ctx.run_id)
    trained = until_done(lambda: upload_model(ctx, settings, clients, artifact_uri))
    batch = CustomBatchPrediction(settings, clients, world.storage)
    assert isinstance(batch.predict(ctx, trained.model, _staged(world)), Pending)
    assert isinstance(batch.predict(ctx, trained.model, _staged(world)), Pending)  # started

    batch.cancel(ctx)
    with pytest.raises(RunCancelled):
        until_done(lambda: batch.predict(ctx, trained.model, _staged(world)))
    (run,) = world.vertex.custom_models._runs.values()
    deadline = time.monotonic() + 60
    while run.process is None or run.process.poll() is None:
        assert time.monotonic() < deadline, "the container still runs"
        time.sleep(0.1)
