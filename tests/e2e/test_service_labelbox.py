"""End to end through the service: a signed ``POST /model_run`` drives a run through the fake
Labelbox (the real SDK over HTTP) to COMPLETE; with Labelbox unreachable the run fails with a
clear error and the service keeps answering.

The source and sink are the real Labelbox backends built by the real factory from the run's
config; the trainer is the pipeline tests' stand-in until the local detector lands on main.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.labelbox_server import API_KEY, FakeLabelbox, make_export_row
from tests.integration.pipeline.fakes import Calls, FakeTrainer
from tests.integration.service.live_server import serve_in_thread
from vmt.backends.factory import Backends, build_sink, build_source
from vmt.config import Settings, load_settings
from vmt.pipeline.run_config import RunConfig
from vmt.pipeline.runner import Runner
from vmt.retry import Backoff
from vmt.service.pipeline_runs import PipelineRunService
from vmt.service.signature import sign

SECRET = "whsec-e2e-0123456789"
TOKEN = "token-e2e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODEL_RUN = "mr-e2e-0001"


@pytest.fixture
def fake_labelbox(tmp_path: Path) -> Iterator[FakeLabelbox]:
    fake = FakeLabelbox(tmp_path / "fake-labelbox").start()
    splits = ["training"] * 6 + ["validation"] * 2 + ["test"] * 2
    fake.add_model_run(
        MODEL_RUN,
        rows=[make_export_row(i, model_run_id=MODEL_RUN, split=s) for i, s in enumerate(splits)],
        classes=["car"],
    )
    try:
        yield fake
    finally:
        fake.stop()


def service_settings(tmp_path: Path, endpoint: str) -> Settings:
    return load_settings(
        webhook_secret=SECRET,
        api_token=TOKEN,
        labelbox_api_key=API_KEY,
        labelbox_endpoint=endpoint,
        labelbox_poll_seconds=0.0,
        labelbox_retry_deadline_s=1.0,
        state_dir=tmp_path / "state",
    )


def runs_with_stand_in_trainer(settings: Settings, calls: Calls) -> PipelineRunService:
    def factory(config: RunConfig, settings: Settings) -> Backends:
        assert config.source.kind == config.sink.kind == "labelbox"
        source, _ = build_source(config.source, settings)
        return Backends(
            source=source, trainer=FakeTrainer(calls), sink=build_sink(config.sink, settings)
        )

    runner = Runner(
        settings,
        backends_factory=factory,
        backoff=Backoff(base=0.01, cap=0.05, deadline=2.0, max_attempts=2),
    )
    return PipelineRunService(settings, runner=runner)


def deliver(url: str, model_run_id: str) -> httpx.Response:
    body = json.dumps(
        {"modelId": "model-1", "modelRunId": model_run_id, "modelType": "local_object_detection"}
    ).encode()
    return httpx.post(
        f"{url}/model_run", content=body, headers={"X-Hub-Signature": sign(SECRET.encode(), body)}
    )


def wait_for_state(url: str, run_id: str, states: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = httpx.get(f"{url}/runs/{run_id}", headers=AUTH).json()
        if view["state"] in states:
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.1)


def test_signed_delivery_runs_to_complete_through_fake_labelbox(
    tmp_path: Path, fake_labelbox: FakeLabelbox
) -> None:
    from vmt.service.app import create_app

    settings = service_settings(tmp_path, fake_labelbox.endpoint)
    calls = Calls()
    app = create_app(
        settings,
        runner=runs_with_stand_in_trainer(settings, calls),
        model_types=["local_object_detection"],
    )
    with serve_in_thread(app) as url:
        created = deliver(url, MODEL_RUN)
        assert created.status_code == 202
        run_id = created.json()["run_id"]
        view = wait_for_state(url, run_id, {"complete", "failed"})
        assert view["state"] == "complete", view["error"]
        again = deliver(url, MODEL_RUN)
        assert again.status_code == 200
        assert again.json() == {"run_id": run_id, "model_run_id": MODEL_RUN, "status": "complete"}

    assert [s["state"] for s in view["stages"]] == ["done"] * 6
    assert view["model_run_id"] == MODEL_RUN
    statuses = [s["status"] for s in fake_labelbox.statuses(MODEL_RUN)]
    assert statuses[0] == "EXPORTING_DATA"
    assert statuses[-1] == "COMPLETE"
    assert statuses.index("PREPARING_DATA") < statuses.index("TRAINING_MODEL")
    assert "FAILED" not in statuses
    predictions = fake_labelbox.predictions(MODEL_RUN)
    predicted_rows = {p["dataRow"]["id"] for p in predictions}
    assert predicted_rows == {f"dr-{i:06d}" for i in range(6, 10)}  # validation + test only
    assert all(p["confidence"] == pytest.approx(0.9) for p in predictions)
    assert calls.jobs_created == 1


def test_labelbox_unreachable_fails_clearly_and_service_keeps_answering(tmp_path: Path) -> None:
    from vmt.service.app import create_app

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = service_settings(tmp_path, f"http://127.0.0.1:{port}/graphql")
    app = create_app(
        settings,
        runner=runs_with_stand_in_trainer(settings, Calls()),
        model_types=["local_object_detection"],
    )
    with serve_in_thread(app) as url:
        run_id = deliver(url, MODEL_RUN).json()["run_id"]
        view = wait_for_state(url, run_id, {"complete", "failed"})
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
        assert deliver(url, "mr-another").status_code == 202
    assert view["state"] == "failed"
    assert view["error"].startswith("Export failed:"), view["error"]
    assert "Labelbox" in view["error"]
    assert API_KEY not in json.dumps(view)
    assert view["stages"][0]["state"] == "failed"
