"""A trainer registered in one place (``tests.fakes.scripted_trainer.registered``) appears
everywhere trainers are listed, offered, accepted, shown and linked, with no other edit:
``GET /models`` (the service and the Vertex AI Pipelines app), ``vmt models``, ``vmt run
--trainer`` (help and a whole run), the dashboard (title, cost, console link) and the compiled
pipeline (its description and the train step's ``gcp_resources``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from tests.fakes.run_service import FakeRuns
from tests.fakes.scripted_trainer import (
    CONSOLE,
    JOB_HANDLE,
    MODEL_TYPE,
    NAME,
    SCRIPTED,
    registered,
)
from tests.integration.service.live_server import serve_in_thread
from vmt.backends.registry import TrainerSpec, trainer_names
from vmt.cli import app
from vmt.config import load_settings
from vmt.orchestrators.kfp_pipeline import compile_pipeline
from vmt.orchestrators.steps import gcp_resources, step_resource_keys
from vmt.pipeline.store import RunState, RunStore
from vmt.synthetic import generate_dataset

TOKEN = "dashboard-token-0123456789"
JOB = "projects/p/locations/us-central1/customJobs/77"


@pytest.fixture
def scripted() -> Iterator[TrainerSpec]:
    assert NAME not in trainer_names()
    with registered() as spec:
        yield spec
    assert NAME not in trainer_names()


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_models_routes_list_it(scripted: TrainerSpec, tmp_path: Path) -> None:
    from vmt.service.app import create_app
    from vmt.service.pipelines_app import offered_pipeline_model_types

    settings = load_settings(state_dir=tmp_path / "state")
    with serve_in_thread(create_app(settings, runner=FakeRuns(), insecure=True)) as url:
        models = httpx.get(f"{url}/models").json()
    assert MODEL_TYPE in models and "local_object_detection" in models
    assert MODEL_TYPE in offered_pipeline_model_types()


def test_vmt_models_lists_it(scripted: TrainerSpec) -> None:
    lines = _cli("models").splitlines()
    assert [line.split() for line in lines if line.startswith(MODEL_TYPE)] == [
        [MODEL_TYPE, NAME, *SCRIPTED.model_types[0].description.split(" ")]
    ]
    assert MODEL_TYPE in json.loads(_cli("models", "--json"))


def test_vmt_run_lists_and_runs_it_and_the_dashboard_shows_it(
    scripted: TrainerSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert f"|{NAME}]" in _cli("run", "--help")
    monkeypatch.setenv("VMT_LOCAL_EPOCHS", "1")
    monkeypatch.setenv("VMT_LOCAL_DEVICE", "cpu")
    export = generate_dataset(tmp_path / "data", images=12, seed=3)
    out = _cli(
        "run", "--export", str(export), "--out", str(tmp_path / "out"), "--trainer", NAME,
        "--seed", "0", "--train-seconds", "60",
    )  # fmt: skip
    assert f"{NAME}: training costs at most $0.60" in out
    assert (tmp_path / "out" / "metrics.json").is_file()

    settings = load_settings(api_token=TOKEN)
    store = RunStore.for_settings(settings)
    (run,) = store.page_runs(state=None, limit=10, offset=0)
    assert (run.state, run.config.trainer.kind) == (RunState.COMPLETE, NAME)
    assert run.config.trainer.options == {"seed": 0, "train_seconds": 60.0}
    store.set_handle(run.id, JOB_HANDLE, JOB)  # as a cloud job's resource name would be
    store.close()

    from vmt.service.dashboard.local_app import create_ui_app

    with (
        serve_in_thread(create_ui_app(settings)) as url,
        httpx.Client(base_url=url) as client,
    ):
        assert client.post("/ui/login", data={"token": TOKEN, "next": "/ui/"}).status_code == 303
        runs = client.get("/ui/").text
        page = client.get(f"/ui/runs/{run.id}").text
    assert f'<td title="{SCRIPTED.title}">{NAME}</td>' in runs
    assert "$1.25" in runs and "$1.25" in page  # what the scripted training said it cost
    assert f"{SCRIPTED.title} ({NAME})" in page
    assert f'href="{CONSOLE}/{JOB}"' in page


def test_the_compiled_pipeline_runs_and_links_it(scripted: TrainerSpec, tmp_path: Path) -> None:
    path = compile_pipeline(tmp_path / "pipeline.yaml", image="vmt:test")
    description = yaml.safe_load(path.read_text())["pipelineInfo"]["description"]
    assert description.endswith(f"(trainers: vertex, {NAME})")
    config = json.dumps(
        {
            "source": {"kind": "labelbox", "options": {"model_run_id": "mr"}},
            "trainer": {"kind": NAME, "options": {}},
            "sink": {"kind": "labelbox", "options": {"model_run_id": "mr"}},
        }
    )
    keys = step_resource_keys(config, "train")
    assert keys == (JOB_HANDLE,) and step_resource_keys(config, "predict") == ()
    linked = json.loads(gcp_resources({JOB_HANDLE: JOB}, region="us-central1", keys=keys))
    assert linked == {
        "resources": [
            {
                "resourceType": "CustomJob",
                "resourceUri": f"https://us-central1-aiplatform.googleapis.com/v1/{JOB}",
            }
        ]
    }
