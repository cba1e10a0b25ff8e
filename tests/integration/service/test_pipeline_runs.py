"""The service over the real Runner and run store (backends swapped at the factory seam)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.service.conftest import SECRET, TOKEN
from tests.integration.service.live_server import serve_in_thread
from vmt.backends.factory import Backends
from vmt.config import Settings, load_settings
from vmt.errors import BackendError, NotFoundError, RunConflictError
from vmt.pipeline.protocols import RunContext, RunStatus
from vmt.pipeline.run_config import RunConfig
from vmt.pipeline.runner import Runner
from vmt.retry import Backoff
from vmt.service.pipeline_runs import PipelineRunService
from vmt.service.signature import sign


class UnreachableSource:
    unassigned = "skip"

    def locate_image(self, uri: str) -> str:
        return uri

    def export(self, ctx: RunContext, dest: Path) -> None:
        raise BackendError("Labelbox is unreachable (connection refused)", retryable=False)


class IdleTrainer:
    name = "idle"

    def prepare(self, ctx: RunContext, samples: Any) -> Iterator[Any]:
        raise AssertionError("not reached")

    def train(self, ctx: RunContext, samples: Any) -> str:
        raise AssertionError("not reached")

    def predict(self, ctx: RunContext, model: str, samples: Any) -> Iterator[Any]:
        raise AssertionError("not reached")

    def cancel(self, ctx: RunContext) -> None:
        return None


class RecordingSink:
    def __init__(self) -> None:
        self.statuses: list[tuple[str, str | None]] = []

    def report_status(
        self,
        ctx: RunContext,
        status: RunStatus,
        *,
        metadata: Mapping[str, object],
        error: str | None = None,
    ) -> None:
        self.statuses.append((status.value, error))

    def publish(self, ctx: RunContext, **_: Any) -> None:
        raise AssertionError("not reached")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(webhook_secret=SECRET, api_token=TOKEN, state_dir=tmp_path / "state")


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def runs(settings: Settings, sink: RecordingSink) -> PipelineRunService:
    seen: list[RunConfig] = []

    def factory(config: RunConfig, _: Settings) -> Backends:
        seen.append(config)
        return Backends(source=UnreachableSource(), trainer=IdleTrainer(), sink=sink)

    runner = Runner(settings, backends_factory=factory, backoff=Backoff(base=0.0, max_attempts=1))
    return PipelineRunService(settings, runner=runner)


def test_start_run_is_idempotent_and_records_a_labelbox_run(runs: PipelineRunService) -> None:
    run_id = runs.new_run_id()
    for _ in range(2):
        runs.start_run(
            run_id, model_run_id="mr-1", model_type="local_object_detection", model_id="m-1"
        )
    listed = runs.list_runs(limit=10)
    assert [r["run_id"] for r in listed] == [run_id]
    record = runs.store.get_run(run_id)
    assert record.config.source.kind == "labelbox"
    assert record.config.sink.options == {"model_run_id": "mr-1"}
    assert record.config.trainer.kind == "local"
    view = runs.get_run(run_id)
    assert view is not None
    assert view["state"] == "pending"
    assert [s["stage"] for s in view["stages"]] == [
        "export",
        "prepare",
        "train",
        "predict",
        "evaluate",
        "publish",
    ]
    assert runs.unfinished_runs() == [run_id]
    assert runs.get_run("nope") is None


def test_the_service_gives_its_runs_the_configured_unassigned_policy(
    settings: Settings, sink: RecordingSink
) -> None:
    configured = settings.model_copy(update={"unassigned": "auto"})
    runner = Runner(
        configured, backends_factory=lambda c, s: Backends(UnreachableSource(), IdleTrainer(), sink)
    )
    service = PipelineRunService(configured, runner=runner)
    run_id = service.new_run_id()
    service.start_run(
        run_id, model_run_id="mr-2", model_type="local_object_detection", model_id=None
    )
    assert service.store.get_run(run_id).config.source.options == {
        "model_run_id": "mr-2",
        "unassigned": "auto",
    }


def test_cancel_outcomes(runs: PipelineRunService) -> None:
    run_id = runs.new_run_id()
    runs.start_run(
        run_id, model_run_id="mr-c", model_type="vertex_automl_object_detection", model_id=None
    )
    assert runs.cancel(run_id)["state"] == "cancelled"
    with pytest.raises(RunConflictError):
        runs.cancel(run_id)
    with pytest.raises(NotFoundError):
        runs.cancel("nope")
    assert runs.advance(run_id) is None
    assert runs.unfinished_runs() == []


def test_labelbox_unreachable_fails_the_run_clearly_and_the_service_keeps_answering(
    settings: Settings, runs: PipelineRunService, sink: RecordingSink
) -> None:
    from vmt.service.app import create_app

    app = create_app(settings, runner=runs, model_types=["local_object_detection"])
    body = json.dumps({"modelRunId": "mr-down", "modelType": "local_object_detection"}).encode()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with serve_in_thread(app) as url:
        created = httpx.post(
            f"{url}/model_run",
            content=body,
            headers={"X-Hub-Signature": sign(SECRET.encode(), body)},
        )
        assert created.status_code == 202
        run_url = f"{url}/runs/{created.json()['run_id']}"
        deadline = time.monotonic() + 10
        while (view := httpx.get(run_url, headers=auth).json())["state"] != "failed":
            assert time.monotonic() < deadline, view
            time.sleep(0.05)
        assert httpx.get(f"{url}/healthz").status_code == 200
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
        again = httpx.post(
            f"{url}/model_run",
            content=body,
            headers={"X-Hub-Signature": sign(SECRET.encode(), body)},
        )
        assert again.status_code == 200
        assert again.json()["status"] == "failed"
    assert view["error"].startswith("Export failed: Labelbox is unreachable")
    assert view["stages"][0]["state"] == "failed"
    assert view["errors"][0]["kind"] == "BackendError"
    assert sink.statuses[0] == ("EXPORTING_DATA", None)
    assert sink.statuses[-1][0] == "FAILED"
    assert "Labelbox is unreachable" in (sink.statuses[-1][1] or "")


def test_unfinished_service_runs_are_resumed_at_start(
    settings: Settings, runs: PipelineRunService
) -> None:
    from vmt.service.app import create_app

    app = create_app(settings, runner=runs, model_types=["local_object_detection"])
    body = json.dumps({"modelRunId": "mr-r", "modelType": "local_object_detection"}).encode()
    # First life: the worker is off, so the run stays pending (as after a crash).
    quiet = create_app(
        settings, runner=runs, model_types=["local_object_detection"], run_worker=False
    )
    with serve_in_thread(quiet) as url:
        run_id = httpx.post(
            f"{url}/model_run",
            content=body,
            headers={"X-Hub-Signature": sign(SECRET.encode(), body)},
        ).json()["run_id"]
    # A run created outside the service (e.g. `vmt run`) is not the service's to resume.
    other = runs.new_run_id()
    runs.start_run(other, model_run_id="mr-cli", model_type="local_object_detection", model_id=None)
    assert runs.store.get_run(run_id).state.value == "pending"
    with serve_in_thread(app):
        deadline = time.monotonic() + 10
        while runs.store.get_run(run_id).state.value == "pending":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert runs.store.get_run(run_id).state.value == "failed"
    assert runs.store.get_run(other).state.value == "pending"


def test_100_concurrent_redeliveries_while_runs_execute_create_one_run_in_the_store(
    settings: Settings, runs: PipelineRunService
) -> None:
    """The fast sample of bench/webhook.py's storm: the real run store counts the runs."""
    import threading

    from vmt.service.app import create_app

    def delivery(model_run_id: str) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"modelRunId": model_run_id, "modelType": "local_object_detection"})
        return body.encode(), {"X-Hub-Signature": sign(SECRET.encode(), body.encode())}

    app = create_app(settings, runner=runs, model_types=["local_object_detection"])
    answers: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(100)
    with (
        serve_in_thread(app) as url,
        httpx.Client(timeout=30, limits=httpx.Limits(max_connections=100)) as client,
    ):
        for index in range(20):  # other runs, executed by the worker meanwhile
            body, headers = delivery(f"mr-other-{index}")
            assert client.post(f"{url}/model_run", content=body, headers=headers).status_code == 202
        body, headers = delivery("mr-storm")

        def deliver() -> None:
            barrier.wait()
            status = client.post(f"{url}/model_run", content=body, headers=headers).status_code
            with lock:
                answers.append(status)

        threads = [threading.Thread(target=deliver) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert sorted(answers) == [200] * 99 + [202]
    model_runs = [r.config.source.options["model_run_id"] for r in runs.store.list_runs()]
    assert model_runs.count("mr-storm") == 1
    assert runs.store.count_runs() == 21
