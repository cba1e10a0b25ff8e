import json
import subprocess

import pytest

from tests.conftest import VMT, cli_env
from vmt.errors import InputError
from vmt.model_types import MODEL_TYPES, model_type, models_response


def test_models_response_offers_every_model_type_by_key() -> None:
    assert models_response() == {
        "vertex_automl_object_detection": {},
        "local_object_detection": {},
    }


def test_each_model_type_names_a_trainer() -> None:
    assert {m.trainer for m in MODEL_TYPES.values()} == {"local", "vertex"}
    assert model_type("local_object_detection").trainer == "local"


def test_an_unknown_model_type_names_the_offered_ones() -> None:
    with pytest.raises(InputError, match="local_object_detection"):
        model_type("yolo")


def test_vmt_models_prints_the_offered_types() -> None:
    out = subprocess.run([*VMT, "models"], capture_output=True, text=True, env=cli_env())
    assert out.returncode == 0, out.stderr
    names = [line.split()[0] for line in out.stdout.splitlines()]
    assert names == list(MODEL_TYPES)
    as_json = subprocess.run(
        [*VMT, "models", "--json"], capture_output=True, text=True, env=cli_env(), check=True
    )
    assert json.loads(as_json.stdout) == models_response()
