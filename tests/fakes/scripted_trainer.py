"""A test trainer declared once, as a plug-in trainer would be: one ``TrainerSpec`` and one
``register_trainer`` call (``registered``), nothing else edited.

Its builder is the local detector under another name for now; the trainer contract work swaps
in a scripted trainer. Its resources and cost are recorded under its own handles.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from vmt.backends.registry import (
    ModelTypeOffer,
    RecordedCost,
    ResourceLink,
    TrainerSpec,
    register_trainer,
    settings_options,
    unregister_trainer,
)
from vmt.config import Settings

NAME = "scripted"
MODEL_TYPE = "scripted_object_detection"
COST_HANDLE = "scripted.cost_usd"
JOB_HANDLE = "scripted.job"
CONSOLE = "https://console.cloud.google.com/scripted"


def _usd(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _estimate(settings: Settings) -> float:
    return round(0.01 * settings.train_seconds, 2)


SCRIPTED = TrainerSpec(
    name=NAME,
    title="scripted test trainer",
    model_types=(ModelTypeOffer(MODEL_TYPE, "A trainer that does what its test says"),),
    builder="vmt.backends.local.trainer:LocalTrainer",
    options=settings_options(
        "ScriptedOptions", "train_seconds", "seed", "local_epochs", "local_device"
    ),
    estimate_cost=_estimate,
    recorded_cost=RecordedCost(COST_HANDLE, _usd),
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
