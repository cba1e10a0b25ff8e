"""The trainer registry: one declaration per trainer, checked names, typed options."""

from __future__ import annotations

import dataclasses

import pytest

from tests.fakes.scripted_trainer import JOB_HANDLE, SCRIPTED, registered
from vmt.backends.registry import (
    ModelTypeOffer,
    model_type_offers,
    register_trainer,
    resource_types,
    trainer_names,
    trainer_spec,
    trainers_help,
)
from vmt.config import Settings
from vmt.errors import ConfigError


def test_the_builtins_are_registered_in_order() -> None:
    assert trainer_names()[:2] == ("local", "vertex")
    offers = model_type_offers()
    assert offers["local_object_detection"][1].name == "local"
    assert offers["vertex_automl_object_detection"][1].name == "vertex"
    assert "local (local PyTorch detector); vertex (Vertex AI AutoML)" in trainers_help()


def test_registering_adds_and_unregistering_removes() -> None:
    with registered() as spec:
        assert trainer_spec("scripted") is spec
        assert register_trainer(spec) is spec  # the same spec again: nothing changes
        assert trainer_names().count("scripted") == 1
        assert resource_types()[JOB_HANDLE] == "CustomJob"
    assert "scripted" not in trainer_names()
    assert JOB_HANDLE not in resource_types()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "local"}, "trainer 'local' is already registered"),
        (
            {"model_types": (ModelTypeOffer("local_object_detection", "again"),)},
            "model type(s) local_object_detection already offered by trainer 'local'",
        ),
    ],
)
def test_a_taken_name_or_model_type_is_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        register_trainer(dataclasses.replace(SCRIPTED, **change))  # type: ignore[arg-type]
    assert str(err.value) == message
    assert "scripted" not in trainer_names()


def test_an_unknown_trainer_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown trainer 'tpu' \(known: local, vertex"):
        trainer_spec("tpu")


@pytest.mark.parametrize(
    ("trainer", "options", "overrides"),
    [
        ("local", {"train_seconds": 7.5, "seed": 3}, {"train_seconds": 7.5, "seed": 3}),
        ("local", {"seed": None}, {}),
        ("vertex", {"vertex_dry_run": True}, {"vertex_dry_run": True}),
        ("vertex", {"vertex_model_type": "MOBILE_TF_LOW_LATENCY_1"},
         {"vertex_model_type": "MOBILE_TF_LOW_LATENCY_1"}),
    ],
)  # fmt: skip
def test_options_become_settings_overrides(
    trainer: str, options: dict[str, object], overrides: dict[str, object]
) -> None:
    spec = trainer_spec(trainer)
    assert spec.validate_options(options) == overrides
    applied = spec.settings_for(Settings(), options)
    assert {name: getattr(applied, name) for name in overrides} == overrides


@pytest.mark.parametrize(
    ("trainer", "options", "problem"),
    [
        ("local", {"train_seconds": 0}, "train_seconds: Input should be greater than 0"),
        ("local", {"local_epochs": 0}, "local_epochs: Input should be greater than or equal to 1"),
        ("local", {"vertex_dry_run": True}, "vertex_dry_run: Extra inputs are not permitted"),
        ("vertex", {"vertex_budget_milli_node_hours": 10}, "greater than or equal to 1000"),
        ("vertex", {"seed": 1}, "seed: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_bad_options_are_config_errors_naming_the_option(
    trainer: str, options: dict[str, object], problem: str
) -> None:
    with pytest.raises(ConfigError) as err:
        trainer_spec(trainer).validate_options(options)
    assert str(err.value).startswith(f"trainer {trainer!r}: invalid options: ")
    assert problem in str(err.value)


def test_availability_says_why_not() -> None:
    vertex = trainer_spec("vertex")
    assert vertex.unavailable(Settings()) == "VMT_GCP_PROJECT and VMT_GCS_BUCKET are not both set"
    assert vertex.unavailable(Settings(gcp_project="p", gcs_bucket="b")) is None
    assert trainer_spec("local").unavailable(Settings()) is None  # torch is installed here


def test_costs_before_launch() -> None:
    vertex = trainer_spec("vertex")
    assert vertex.estimate_cost(Settings(vertex_budget_milli_node_hours=20_000)) == pytest.approx(
        69.3
    )
    assert trainer_spec("local").estimate_cost(Settings()) is None


def test_vertex_console_links_by_handle() -> None:
    vertex = trainer_spec("vertex")
    by_step = {r.handle: (r.step, r.resource_type) for r in vertex.resources}
    assert by_step == {
        "vertex.dataset": ("train", "Dataset"),
        "vertex.training_pipeline": ("train", "TrainingPipeline"),
        "vertex.model": ("train", "Model"),
        "vertex.batch_prediction_job": ("predict", "BatchPredictionJob"),
    }
    assert vertex.console_url("projects/p/locations/eu/models/9") == (
        "https://console.cloud.google.com/vertex-ai/models/locations/eu/models/9?project=p"
    )


def test_a_missing_extra_is_named() -> None:
    broken = dataclasses.replace(
        SCRIPTED, name="broken", model_types=(), builder="vmt_no_such_module:Trainer", extra="x"
    )
    with pytest.raises(ConfigError) as err:
        broken.build(Settings(), {})
    assert 'pip install "vertex-model-training[x]"' in str(err.value)


def test_a_command_line_keeps_each_trainer_s_own_options() -> None:
    from vmt.cli.trainer_option import trainer_options_checked
    from vmt.pipeline.run_config import labelbox_run_config

    notes: list[str] = []
    options = {"train_seconds": 3.0, "seed": 1, "vertex_dry_run": True}
    for trainer, kept, note in [
        (
            "local",
            {"train_seconds": 3.0, "seed": 1},
            "trainer local takes no option vertex_dry_run",
        ),
        ("vertex", {"vertex_dry_run": True}, "trainer vertex takes no option seed, train_seconds"),
    ]:
        config = labelbox_run_config(model_run_id="mr", trainer=trainer, trainer_options=options)
        checked = trainer_options_checked(config, display_note=notes.append)
        assert checked.trainer.options == kept
        assert notes.pop() == f"note: {note}: left out"
    bad = labelbox_run_config(model_run_id="mr", trainer="local", trainer_options={"seed": "x"})
    with pytest.raises(ConfigError, match="seed: Input should be a valid integer"):
        trainer_options_checked(bad, display_note=notes.append)
