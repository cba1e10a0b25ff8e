"""A test trainer declared once, as a plug-in trainer would be: one ``TrainerSpec`` and one
``register_trainer`` call (``registered``), nothing else edited.

Its builder is the shipped ``ScriptedTrainer`` (jobs that follow a script: launched, looked at,
finished; predictions are the ground truth). What it cost comes back in its ``Trained`` result;
its job is linked from its own handle.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from vmt.backends.registry import (
    ModelTypeOffer,
    ResourceLink,
    TrainerSpec,
    register_trainer,
    settings_options,
    unregister_trainer,
)
from vmt.config import Settings

NAME = "scripted"
MODEL_TYPE = "scripted_object_detection"
JOB_HANDLE = "scripted.training_job"
CONSOLE = "https://console.cloud.google.com/scripted"


def _estimate(settings: Settings) -> float:
    return round(0.01 * settings.train_seconds, 2)


SCRIPTED = TrainerSpec(
    name=NAME,
    title="scripted test trainer",
    model_types=(ModelTypeOffer(MODEL_TYPE, "A trainer that does what its test says"),),
    builder="vmt.backends.scripted:ScriptedTrainer",
    options=settings_options(
        "ScriptedOptions", "train_seconds", "seed", "local_epochs", "local_device"
    ),
    estimate_cost=_estimate,
    resources=(ResourceLink(JOB_HANDLE, "Scripted job", "train", "CustomJob"),),
    console_url=lambda name: f"{CONSOLE}/{name}",
    in_pipeline_image=True,
)


@contextmanager
def registered(spec: TrainerSpec = SCRIPTED) -> Iterator[TrainerSpec]:
    """``spec`` registered for the duration of the block."""
    register_trainer(spec)
    try:
        yield spec
    finally:
        unregister_trainer(spec.name)
