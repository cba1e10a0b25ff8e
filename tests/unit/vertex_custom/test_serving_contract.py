"""What ``vmt serve-model`` reads of Vertex's custom-container environment, and the Model
Registry id a run's model gets."""

from __future__ import annotations

import re

import pytest

from vmt.backends.vertex.calls import run_label_value
from vmt.backends.vertex_custom.models import model_id
from vmt.backends.vertex_custom.serving import ServingEnv
from vmt.errors import ConfigError


def test_the_defaults_are_vertex_s() -> None:
    env = ServingEnv.from_env({"AIP_STORAGE_URI": "gs://b/runs/r/custom_job/model"})
    assert env == ServingEnv(8080, "/health", "/predict", "gs://b/runs/r/custom_job/model")


def test_what_vertex_sets_is_used() -> None:
    given = {
        "AIP_HTTP_PORT": "7080",
        "AIP_HEALTH_ROUTE": "/v1/endpoints/1/deployedModels/2",
        "AIP_PREDICT_ROUTE": "/v1/endpoints/1/deployedModels/2:predict",
        "AIP_STORAGE_URI": "/models/m",
    }
    assert ServingEnv.from_env(given) == ServingEnv(
        7080,
        "/v1/endpoints/1/deployedModels/2",
        "/v1/endpoints/1/deployedModels/2:predict",
        "/models/m",
    )


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, "AIP_STORAGE_URI"),
        ({"AIP_STORAGE_URI": "  "}, "AIP_STORAGE_URI"),
        ({"AIP_STORAGE_URI": "gs://b/m", "AIP_HTTP_PORT": "http"}, "AIP_HTTP_PORT"),
        ({"AIP_STORAGE_URI": "gs://b/m", "AIP_HTTP_PORT": "70000"}, "AIP_HTTP_PORT"),
        ({"AIP_STORAGE_URI": "gs://b/m", "AIP_PREDICT_ROUTE": "predict"}, "AIP_PREDICT_ROUTE"),
    ],
)
def test_a_missing_or_wrong_variable_is_named(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        ServingEnv.from_env(env)


_MODEL_ID = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


@pytest.mark.parametrize(
    "run_id",
    ["run-1", "Run With Spaces/And:Colons", "x" * 63, "r" * 200, "2026-01-01_run", "-"],
)
def test_a_model_id_is_one_vertex_accepts_and_the_same_for_the_same_run(run_id: str) -> None:
    made = model_id(run_id)
    assert _MODEL_ID.match(made), made
    assert made == model_id(run_id)
    assert made != model_id(run_id + "x")
    if len(run_label_value(run_id)) <= 59:
        assert made == f"vmt-{run_label_value(run_id)}"
