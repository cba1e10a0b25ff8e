"""``vmt serve --orchestrator vertex-pipelines``: the stateless app in front of the fake Vertex
server, driven over HTTP (uvicorn on 127.0.0.1): 200 concurrent deliveries for one model run
submit exactly one pipeline job, across two app instances; the runs API reads the jobs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.fakes.gcp import LocalGcp, local_gcp
from tests.integration.service.live_server import serve_in_thread
from vmt.config import load_settings
from vmt.service.pipelines_app import create_pipelines_app
from vmt.service.signature import sign

SECRET = "pipelines-webhook-secret"
TOKEN = "pipelines-api-token"
IMAGE = "us-central1-docker.pkg.dev/test-project/vmt/vmt:0.1.0"
MODEL_RUN = "clq3x9k2b0001"
JOB = f"vmt-{MODEL_RUN}"


@pytest.fixture
def gcp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalGcp]:
    with local_gcp() as world:
        for key, value in world.settings_env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("VMT_PIPELINE_IMAGE", IMAGE)
        monkeypatch.setenv("VMT_WEBHOOK_SECRET", SECRET)
        monkeypatch.setenv("VMT_API_TOKEN", TOKEN)
        monkeypatch.setenv("VMT_STATE_DIR", str(tmp_path / "state"))
        yield world


def _delivery(model_run: str = MODEL_RUN) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"modelId": "m-1", "modelRunId": model_run, "modelType": "vertex_automl_object_detection"}
    ).encode()
    return body, {"X-Hub-Signature": sign(SECRET.encode(), body)}


@pytest.mark.slow  # heavy; CI runs it (make test-slow); covered lighter by the default suite
def test_200_concurrent_deliveries_submit_one_pipeline_job(gcp: LocalGcp, tmp_path: Path) -> None:
    settings = load_settings()
    body, headers = _delivery()
    with (
        serve_in_thread(create_pipelines_app(settings)) as first,
        serve_in_thread(create_pipelines_app(settings)) as second,
        httpx.Client(timeout=60) as client,
        ThreadPoolExecutor(max_workers=50) as pool,
    ):
        urls = [first if i % 2 else second for i in range(200)]
        responses = list(
            pool.map(lambda url: client.post(f"{url}/model_run", content=body, headers=headers),
                     urls)
        )  # fmt: skip
        codes = sorted(r.status_code for r in responses)
        assert codes == [200] * 199 + [202]
        assert {r.json()["run_id"] for r in responses} == {JOB}
        assert len(gcp.vertex.pipeline_jobs.jobs) == 1
        assert gcp.vertex.pipeline_jobs.create_requests == 200
        assert not (tmp_path / "state").exists()  # no state of its own

        gcp.vertex.pipeline_jobs.advance(JOB, done=1, running="prepare")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        listed = client.get(f"{first}/runs", headers=auth).json()["runs"]
        assert [(r["run_id"], r["state"], r["stage"]) for r in listed] == [
            (JOB, "running", "prepare")
        ]
        shown = client.get(f"{second}/runs/{JOB}", headers=auth).json()
        assert [s["step"] for s in shown["steps"]] == ["export", "prepare"]
        assert shown["model_run_id"] == MODEL_RUN
        assert client.get(f"{second}/runs/vmt-nope", headers=auth).status_code == 404
        assert client.get(f"{second}/runs").status_code == 401

        cancelled = client.post(f"{first}/runs/{JOB}/cancel", headers=auth)
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        again = client.post(f"{second}/runs/{JOB}/cancel", headers=auth)
        assert again.status_code == 409


def test_models_and_signature_and_health(gcp: LocalGcp) -> None:
    with serve_in_thread(create_pipelines_app(load_settings())) as url:
        body, _ = _delivery()
        models = httpx.get(f"{url}/models", headers={"X-Hub-Signature": sign(SECRET.encode(), b"")})
        assert models.json() == {"vertex_automl_object_detection": {}}
        unsigned = httpx.post(f"{url}/model_run", content=body)
        assert unsigned.status_code == 401
        local = json.dumps({"modelRunId": "x", "modelType": "local_object_detection"}).encode()
        refused = httpx.post(
            f"{url}/model_run",
            content=local,
            headers={"X-Hub-Signature": sign(SECRET.encode(), local)},
        )
        assert refused.status_code == 422
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
    assert not gcp.vertex.pipeline_jobs.jobs
