"""The model types offered to Labelbox's "Train model" menu, defined once.

Each value is a key of ``GET /models`` and the ``modelType`` of ``POST /model_run``
(FORMATS.md 1.4); ``trainer`` names the training backend that runs it (``vmt run --trainer``).
``vmt models`` prints them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from vmt.errors import InputError


class ModelType(StrEnum):
    VERTEX_AUTOML_OBJECT_DETECTION = "vertex_automl_object_detection"
    LOCAL_OBJECT_DETECTION = "local_object_detection"

    @property
    def trainer(self) -> str:
        """The trainer backend name: ``local`` or ``vertex``."""
        return _TRAINERS[self]

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_TRAINERS = {
    ModelType.VERTEX_AUTOML_OBJECT_DETECTION: "vertex",
    ModelType.LOCAL_OBJECT_DETECTION: "local",
}
_DESCRIPTIONS = {
    ModelType.VERTEX_AUTOML_OBJECT_DETECTION: "Vertex AI AutoML image object detection (cloud)",
    ModelType.LOCAL_OBJECT_DETECTION: "Small PyTorch detector trained on the service's own machine",
}

MODEL_TYPES: Mapping[str, ModelType] = {t.value: t for t in ModelType}


def models_response() -> dict[str, dict[str, object]]:
    """The body of ``GET /models``: an object whose keys are the offered model types."""
    return {name: {} for name in MODEL_TYPES}


def model_type(name: str) -> ModelType:
    """The model type called ``name``; InputError naming the offered ones otherwise."""
    try:
        return MODEL_TYPES[name]
    except KeyError:
        offered = ", ".join(MODEL_TYPES)
        raise InputError(f"unknown model type {name!r}; offered: {offered}") from None
