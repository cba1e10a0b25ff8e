"""The local backend: a small anchor-free object detector in pure PyTorch (no torchvision).

Importing this package imports neither PyTorch nor an image library (the registry reads
``spec.py``); the names below load their module on first use, and training and prediction
import PyTorch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmt.backends.local.trainer import LocalTrainer
    from vmt.backends.local.training_config import (
        DEFAULT_TRAIN_SECONDS,
        TrainConfig,
        TrainProgress,
    )

__all__ = ["DEFAULT_TRAIN_SECONDS", "LocalTrainer", "TrainConfig", "TrainProgress"]

_MODULES = {
    "LocalTrainer": "vmt.backends.local.trainer",
    "DEFAULT_TRAIN_SECONDS": "vmt.backends.local.training_config",
    "TrainConfig": "vmt.backends.local.training_config",
    "TrainProgress": "vmt.backends.local.training_config",
}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULES[name]), name)
