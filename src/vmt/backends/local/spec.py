"""The local PyTorch detector as the registry sees it (``vmt.backends.registry``).

No torch is imported here: the trainer class is named by its import path, and availability
asks whether torch is installed without importing it.
"""

from __future__ import annotations

import importlib.util

from vmt.backends.registry import ModelTypeOffer, TrainerSpec, settings_options
from vmt.config import Settings

LocalOptions = settings_options(
    "LocalOptions", "train_seconds", "seed", "local_epochs", "local_device"
)


def _unavailable(settings: Settings) -> str | None:
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (the [local] extra)"
    return None


SPEC = TrainerSpec(
    name="local",
    title="local PyTorch detector",
    model_types=(
        ModelTypeOffer(
            "local_object_detection",
            "Small PyTorch detector trained on the service's own machine",
        ),
    ),
    builder="vmt.backends.local.trainer:LocalTrainer",
    options=LocalOptions,
    extra="local",
    unavailable=_unavailable,
)
