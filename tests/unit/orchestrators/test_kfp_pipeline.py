"""The compiled Vertex AI pipeline: steps, their order, retry policies, the exit handler,
parameters, the linked Vertex resources, and a YAML that kfp loads back."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp import components

from vmt.orchestrators.kfp_pipeline import (
    EXIT_TASK,
    RETRY,
    STAGE_ORDER,
    compile_pipeline,
)
from vmt.orchestrators.steps import gcp_resources

IMAGE = "us-central1-docker.pkg.dev/my-project/vmt/vmt:0.1.0"
PARAMETERS = {"run_id", "run_config", "settings", "run_dir"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = compile_pipeline(tmp_path_factory.mktemp("kfp") / "pipeline.yaml", image=IMAGE)
    return path, yaml.safe_load(path.read_text())


def _stage_dag(spec: dict[str, Any]) -> dict[str, Any]:
    handler = spec["root"]["dag"]["tasks"]["exit-handler-1"]["componentRef"]["name"]
    tasks: dict[str, Any] = spec["components"][handler]["dag"]["tasks"]
    return tasks


def test_six_stage_steps_in_order(compiled: tuple[Path, dict[str, Any]]) -> None:
    _, spec = compiled
    tasks = _stage_dag(spec)
    assert set(tasks) == set(STAGE_ORDER)
    for before, after in itertools.pairwise(STAGE_ORDER):
        assert tasks[after]["dependentTasks"] == [before], after
    assert "dependentTasks" not in tasks["export"]
    assert tasks["predict"]["inputs"]["parameters"]["model"]["taskOutputParameter"] == {
        "producerTask": "train",
        "outputParameterKey": "Output",
    }
    for name, task in tasks.items():
        assert task["taskInfo"]["name"] == name
        params = task["inputs"]["parameters"]
        assert {k: params[k]["componentInputParameter"] for k in PARAMETERS} == {
            k: f"pipelinechannel--{k}" for k in PARAMETERS
        }


def test_every_step_has_its_retry_policy(compiled: tuple[Path, dict[str, Any]]) -> None:
    _, spec = compiled
    tasks = {**_stage_dag(spec), EXIT_TASK: spec["root"]["dag"]["tasks"][EXIT_TASK]}
    for name, task in tasks.items():
        policy = task["retryPolicy"]
        assert policy["maxRetryCount"] == RETRY[name].retries, name
        assert policy["backoffDuration"] == RETRY[name].backoff
        assert policy["backoffFactor"] == RETRY[name].factor
        assert policy["backoffMaxDuration"] == RETRY[name].max_duration
    assert RETRY["train"].retries >= 1 and RETRY["export"].retries >= 1


def test_exit_handler_reports_the_end_of_the_stages(
    compiled: tuple[Path, dict[str, Any]],
) -> None:
    _, spec = compiled
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"exit-handler-1", EXIT_TASK}
    end = root[EXIT_TASK]
    assert end["dependentTasks"] == ["exit-handler-1"]
    assert end["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    assert end["inputs"]["parameters"]["status"] == {
        "taskFinalStatus": {"producerTask": "exit-handler-1"}
    }
    assert {k: v["componentInputParameter"] for k, v in end["inputs"]["parameters"].items()
            if k != "status"} == {k: k for k in PARAMETERS}  # fmt: skip


def test_parameters_image_and_vertex_links(compiled: tuple[Path, dict[str, Any]]) -> None:
    _, spec = compiled
    assert set(spec["root"]["inputDefinitions"]["parameters"]) == PARAMETERS
    assert all(
        p["parameterType"] == "STRING"
        for p in spec["root"]["inputDefinitions"]["parameters"].values()
    )
    executors = spec["deploymentSpec"]["executors"]
    assert set(executors) == {f"exec-{n}" for n in (*STAGE_ORDER, EXIT_TASK)}
    for executor in executors.values():
        container = executor["container"]
        assert container["image"] == IMAGE
        program = " ".join(container["command"])
        assert "pip install" not in program  # everything is in the image
        assert "from vmt.orchestrators.steps import" in program
    outputs = spec["components"]["comp-train"]["outputDefinitions"]
    assert outputs["parameters"]["gcp_resources"]["parameterType"] == "STRING"
    assert outputs["artifacts"]["model"]["artifactType"]["schemaTitle"] == "system.Model"
    predict_outputs = spec["components"]["comp-predict"]["outputDefinitions"]["parameters"]
    assert "gcp_resources" in predict_outputs


def test_yaml_loads_back_in_kfp(compiled: tuple[Path, dict[str, Any]]) -> None:
    path, _ = compiled
    loaded = components.load_component_from_file(str(path))
    assert loaded.name == "vmt-run"
    assert set(loaded.component_spec.inputs or {}) == PARAMETERS


def test_gcp_resources_links_recorded_vertex_resources() -> None:
    handles = {
        "vertex.dataset": "projects/p/locations/europe-west4/datasets/1",
        "vertex.training_pipeline": "projects/p/locations/europe-west4/trainingPipelines/2",
        "vertex.import_file": "gs://b/import.jsonl",
        "model": "/local/model.pt",
    }
    resources = yaml.safe_load(
        gcp_resources(
            handles,
            region="europe-west4",
            keys=("vertex.dataset", "vertex.training_pipeline", "vertex.model"),
        )
    )
    assert resources == {
        "resources": [
            {
                "resourceType": "Dataset",
                "resourceUri": "https://europe-west4-aiplatform.googleapis.com/v1/"
                "projects/p/locations/europe-west4/datasets/1",
            },
            {
                "resourceType": "TrainingPipeline",
                "resourceUri": "https://europe-west4-aiplatform.googleapis.com/v1/"
                "projects/p/locations/europe-west4/trainingPipelines/2",
            },
        ]
    }
