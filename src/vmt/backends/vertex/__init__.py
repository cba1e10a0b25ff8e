"""Vertex AI AutoML image object detection as a ``Trainer`` (see ``trainer.py``).

Importing this package imports no Google SDK (the registry reads ``spec.py``);
``VertexTrainer`` loads its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmt.backends.vertex.trainer import VertexTrainer

__all__ = ["VertexTrainer"]


def __getattr__(name: str) -> Any:
    if name != "VertexTrainer":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module("vmt.backends.vertex.trainer").VertexTrainer
