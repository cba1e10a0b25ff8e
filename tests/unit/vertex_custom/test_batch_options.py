"""The batch prediction job a custom-trained model gets: machines, parameters, rows sent."""

from __future__ import annotations

import pytest

from vmt.backends.vertex_custom.models import CUSTOM_BATCH
from vmt.config import Settings
from vmt.domain import Sample, Split
from vmt.errors import ConfigError


def _options(**settings: object) -> dict[str, object]:
    return CUSTOM_BATCH.job_options(Settings(**settings))


def test_cpu_machines_by_default_and_our_parameters() -> None:
    options = _options(vertex_confidence_threshold=0.2, vertex_max_predictions=50)
    resources = options["dedicated_resources"]
    assert resources.machine_spec.machine_type == "n1-standard-4"
    assert resources.machine_spec.accelerator_count == 0
    assert resources.max_replica_count == 1
    assert options["model_parameters"] == {"confidence_threshold": 0.2, "max_predictions": 50}
    assert options["manual_batch_tuning_parameters"].batch_size == 16


def test_an_accelerator_is_asked_for_by_its_vertex_name() -> None:
    options = _options(
        vertex_custom_predict_machine_type="n1-standard-8",
        vertex_custom_predict_accelerator_type="NVIDIA_TESLA_T4",
        vertex_custom_predict_accelerator_count=2,
        vertex_custom_predict_replicas=5,
    )
    spec = options["dedicated_resources"].machine_spec
    assert (spec.machine_type, spec.accelerator_type.name, spec.accelerator_count) == (
        "n1-standard-8",
        "NVIDIA_TESLA_T4",
        2,
    )


def test_an_unknown_accelerator_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="VMT_VERTEX_CUSTOM_PREDICT_ACCELERATOR_TYPE"):
        _options(
            vertex_custom_predict_accelerator_type="NVIDIA_GTX_1080",
            vertex_custom_predict_accelerator_count=1,
        )


@pytest.mark.parametrize(
    ("uri", "sent"),
    [
        ("gs://b/img/1.png", True),
        ("https://images.example.com/1.jpg", True),
        ("/data/img/1.png", False),
        ("file:///data/img/1.png", False),
    ],
)
def test_rows_are_sent_when_the_container_can_read_their_image(uri: str, sent: bool) -> None:
    sample = Sample("r1", uri, None, None, Split.TEST, line=3)
    assert (CUSTOM_BATCH.unsendable(sample) is None) is sent
    if sent:
        assert CUSTOM_BATCH.instance(sample) == {"image_uri": uri}
