"""End to end through the service, nothing swapped but the outside world: a signed
``POST /model_run`` creates a run that the service's worker drives with the real backends
(built by the real factory from the run's config) through the fake Labelbox (real SDK over
HTTP) and the local PyTorch trainer, or the fake Vertex AI + GCS emulator, to COMPLETE.
With Labelbox unreachable the run fails with a clear error and the service keeps answering.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import orjson
import pytest

from tests.fakes.gcp import local_gcp
from tests.fakes.labelbox_server import API_KEY, FakeLabelbox
from tests.integration.service.live_server import serve_in_thread
from vmt.backends.factory import build_backends
from vmt.config import Settings, load_settings
from vmt.pipeline.artifacts import LABELBOX_PREDICTIONS_FILE
from vmt.pipeline.runner import Runner
from vmt.retry import Backoff
from vmt.service.pipeline_runs import PipelineRunService
from vmt.service.signature import sign
from vmt.synthetic import generate_dataset

SECRET = "whsec-e2e-0123456789"
TOKEN = "token-e2e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODEL_RUN = "mr-e2e-0001"
MODEL = "model-e2e"


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def labelbox_rows(export: Path, *, image_base: str | None = None) -> list[dict[str, Any]]:
    """The synthetic export's rows as rows of MODEL_RUN (optionally with http image URLs)."""
    rows = []
    for line in export.read_bytes().splitlines():
        row = orjson.loads(line)
        [(_, experiment)] = row["experiments"].items()
        [(_, run)] = experiment["runs"].items()
        row["experiments"] = {MODEL: {"name": "model", "runs": {MODEL_RUN: run}}}
        if image_base is not None:
            row["data_row"]["row_data"] = image_base + Path(row["data_row"]["row_data"]).name
        rows.append(row)
    return rows


def classes_of(rows: list[dict[str, Any]]) -> set[str]:
    return {
        obj["name"]
        for row in rows
        for run in row["experiments"][MODEL]["runs"].values()
        for label in run["labels"]
        for obj in label["annotations"]["objects"]
    }


def service_settings(tmp_path: Path, endpoint: str, **overrides: Any) -> Settings:
    return load_settings(
        webhook_secret=SECRET,
        api_token=TOKEN,
        labelbox_api_key=API_KEY,
        labelbox_endpoint=endpoint,
        labelbox_poll_seconds=0.01,
        labelbox_retry_deadline_s=1.0,
        state_dir=tmp_path / "state",
        **overrides,
    )


def deliver(url: str, model_type: str, model_run_id: str = MODEL_RUN) -> httpx.Response:
    body = json.dumps(
        {"modelId": MODEL, "modelRunId": model_run_id, "modelType": model_type}
    ).encode()
    return httpx.post(
        f"{url}/model_run", content=body, headers={"X-Hub-Signature": sign(SECRET.encode(), body)}
    )


def wait_for_end(url: str, run_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = httpx.get(f"{url}/runs/{run_id}", headers=AUTH).json()
        if view["state"] in ("complete", "failed", "cancelled"):
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.2)


def run_through_service(settings: Settings, model_type: str) -> dict[str, Any]:
    """Serve the real app (real runner and factory), deliver once, redeliver at the end."""
    from vmt.service.app import create_app

    app = create_app(settings, model_types=[model_type])
    with serve_in_thread(app) as url:
        created = deliver(url, model_type)
        assert created.status_code == 202, created.text
        run_id = created.json()["run_id"]
        view = wait_for_end(url, run_id)
        again = deliver(url, model_type)
        assert again.status_code == 200
        assert again.json() == {
            "run_id": run_id,
            "model_run_id": MODEL_RUN,
            "status": view["state"],
        }
        assert len(httpx.get(f"{url}/runs", headers=AUTH).json()["runs"]) == 1
    return view


def assert_published(
    fake: FakeLabelbox, rows: list[dict[str, Any]], view: dict[str, Any], settings: Settings
) -> None:
    """COMPLETE, every status in order, and every prediction the run made (with confidence)
    and its metrics uploaded to the model run."""
    assert view["state"] == "complete", view["error"]
    assert [s["state"] for s in view["stages"]] == ["done"] * 6
    statuses = [s["status"] for s in fake.statuses(MODEL_RUN)]
    assert statuses[0] == "EXPORTING_DATA"
    assert statuses.index("PREPARING_DATA") < statuses.index("TRAINING_MODEL")
    assert statuses[-1] == "COMPLETE"
    assert "FAILED" not in statuses
    evaluated = {
        row["data_row"]["id"]
        for row in rows
        if row["experiments"][MODEL]["runs"][MODEL_RUN].get("split") in ("validation", "test")
    }
    made = settings.state_dir / "runs" / view["run_id"] / LABELBOX_PREDICTIONS_FILE
    predictions = fake.predictions(MODEL_RUN)
    assert len(predictions) == len(made.read_bytes().splitlines())
    assert {p["dataRow"]["id"] for p in predictions} <= evaluated
    assert all(0 <= p["confidence"] <= 1 for p in predictions)
    assert fake.metrics(MODEL_RUN), "no metrics uploaded"
    assert view["metrics"], "no metrics summary on the run"


def test_local_trainer_run_completes_through_fake_labelbox(
    tmp_path: Path, fake_labelbox: FakeLabelbox
) -> None:
    data = tmp_path / "data"
    export = generate_dataset(data, images=30, seed=7)
    # Served over http (allowlisted loopback): a service run reads no local file.
    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(data)))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    rows = labelbox_rows(export, image_base=f"http://127.0.0.1:{files.server_address[1]}/images/")
    fake_labelbox.add_model_run(MODEL_RUN, rows=rows, classes=classes_of(rows), model_id=MODEL)
    settings = service_settings(
        tmp_path, fake_labelbox.endpoint, train_seconds=3.0, local_device="cpu"
    )
    try:
        view = run_through_service(settings, "local_object_detection")
    finally:
        files.shutdown()
        files.server_close()
    assert_published(fake_labelbox, rows, view, settings)
    assert view["trainer"] == "local"


def test_vertex_trainer_run_completes_through_fake_labelbox_and_fake_vertex(
    tmp_path: Path, fake_labelbox: FakeLabelbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    export = generate_dataset(data, images=60, seed=3)
    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(data)))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    rows = labelbox_rows(export, image_base=f"http://127.0.0.1:{files.server_address[1]}/images/")
    fake_labelbox.add_model_run(MODEL_RUN, rows=rows, classes=classes_of(rows), model_id=MODEL)
    try:
        with local_gcp() as gcp:
            for name, value in gcp.settings_env().items():
                monkeypatch.setenv(name, value)
            settings = service_settings(tmp_path, fake_labelbox.endpoint)
            view = run_through_service(settings, "vertex_automl_object_detection")
            assert gcp.vertex.creates("trainingPipelines") == 1
            assert gcp.vertex.creates("batchPredictionJobs") == 1
    finally:
        files.shutdown()
        files.server_close()
    assert_published(fake_labelbox, rows, view, settings)
    assert fake_labelbox.predictions(MODEL_RUN), "the fake Vertex predicts boxes: none arrived"
    assert view["trainer"] == "vertex"
    assert any(key.startswith("vertex") for key in view["handles"]), view["handles"]


def test_labelbox_unreachable_fails_clearly_and_service_keeps_answering(tmp_path: Path) -> None:
    from vmt.service.app import create_app

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = service_settings(tmp_path, f"http://127.0.0.1:{port}/graphql")
    # The real runner and backends factory; only the stage retries are shortened.
    runner = Runner(
        settings,
        backends_factory=build_backends,
        backoff=Backoff(base=0.01, cap=0.05, deadline=2.0, max_attempts=2),
    )
    app = create_app(
        settings,
        runner=PipelineRunService(settings, runner=runner),
        model_types=["local_object_detection"],
    )
    with serve_in_thread(app) as url:
        run_id = deliver(url, "local_object_detection").json()["run_id"]
        view = wait_for_end(url, run_id, timeout=120)
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
        assert deliver(url, "local_object_detection", "mr-another").status_code == 202
    assert view["state"] == "failed"
    assert view["error"].startswith("Export failed: Labelbox"), view["error"]
    assert API_KEY not in json.dumps(view)
    assert view["stages"][0]["state"] == "failed"


class _Counting(_QuietFiles):
    connections: ClassVar[list[str]] = []

    def setup(self) -> None:
        self.connections.append("connected")
        super().setup()


def test_a_webhook_run_fetches_no_local_file_and_no_private_address(
    tmp_path: Path, fake_labelbox: FakeLabelbox
) -> None:
    """row_data naming local files, metadata and private addresses (in several spellings, and
    a loopback listener this test owns, not on the allowlist): every row is refused with
    ``image_location_refused``, the listener sees no connection, and the run's FAILED message
    counts refusals only (nothing about which targets answer)."""
    data = tmp_path / "data"
    export = generate_dataset(data, images=8, seed=5)
    _Counting.connections = []
    listener = ThreadingHTTPServer(("127.0.0.2", 0), partial(_Counting, directory=str(data)))
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    port = listener.server_address[1]
    image = next((data / "images").iterdir())
    targets = [
        str(image),
        f"file://{image}",
        "/etc/passwd",
        f"http://127.0.0.2:{port}/images/{image.name}",
        f"http://2130706434:{port}/images/{image.name}",
        f"http://[::ffff:127.0.0.2]:{port}/images/{image.name}",
        "http://169.254.169.254/computeMetadata/v1/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ]
    rows = labelbox_rows(export)
    for row, target in zip(rows, targets, strict=True):
        row["data_row"]["row_data"] = target
    fake_labelbox.add_model_run(MODEL_RUN, rows=rows, classes=classes_of(rows), model_id=MODEL)
    settings = service_settings(tmp_path, fake_labelbox.endpoint, local_device="cpu")
    from vmt.service.app import create_app

    try:
        with serve_in_thread(create_app(settings, model_types=["local_object_detection"])) as url:
            run_id = deliver(url, "local_object_detection").json()["run_id"]
            view = wait_for_end(url, run_id, timeout=120)
    finally:
        listener.shutdown()
        listener.server_close()
    assert _Counting.connections == []
    assert view["state"] == "failed"
    assert f"{len(targets)} image_location_refused" in view["error"], view["error"]
    failed = [s for s in fake_labelbox.statuses(MODEL_RUN) if s["status"] == "FAILED"]
    assert failed and "image_location_refused" in json.dumps(failed)
    for secret_ish in ("passwd", "169.254", "metadata.google", "127.0.0.2"):
        assert secret_ish not in json.dumps(failed)
