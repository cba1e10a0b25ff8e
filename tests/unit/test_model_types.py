import json
import subprocess

import pytest

from tests.conftest import VMT, cli_env
from vmt.backends.registry import trainer_names, trainer_specs
from vmt.errors import InputError
from vmt.model_types import model_type, model_types, models_response


def test_models_response_offers_every_model_type_by_key() -> None:
    offered = [offer.name for spec in trainer_specs() for offer in spec.model_types]
    assert models_response() == {name: {} for name in offered}
    assert {"vertex_automl_object_detection", "local_object_detection"} <= set(offered)


def test_each_model_type_names_a_trainer() -> None:
    assert {m.trainer for m in model_types().values()} == set(trainer_names())
    assert model_type("local_object_detection").trainer == "local"
    assert model_type("vertex_automl_object_detection").description == (
        "Vertex AI AutoML image object detection (cloud)"
    )


def test_an_unknown_model_type_names_the_offered_ones() -> None:
    with pytest.raises(InputError, match="local_object_detection"):
        model_type("yolo")


def test_vmt_models_prints_the_offered_types() -> None:
    out = subprocess.run([*VMT, "models"], capture_output=True, text=True, env=cli_env())
    assert out.returncode == 0, out.stderr
    names = [line.split()[0] for line in out.stdout.splitlines()]
    assert names == list(model_types())
    as_json = subprocess.run(
        [*VMT, "models", "--json"], capture_output=True, text=True, env=cli_env(), check=True
    )
    assert json.loads(as_json.stdout) == models_response()
