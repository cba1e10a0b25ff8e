"""The model types offered to Labelbox's "Train model" menu, defined once.

``vmt models`` prints them; the service's ``GET /models`` answers :func:`models_response`; a
``POST /model_run`` names one of them, and :data:`MODEL_TYPES` says which trainer runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vmt.errors import InputError


@dataclass(frozen=True, slots=True)
class ModelType:
    name: str
    trainer: str
    """The trainer backend that runs it (``vmt run --trainer``)."""
    description: str


MODEL_TYPES: Mapping[str, ModelType] = {
    t.name: t
    for t in (
        ModelType(
            "vertex_automl_object_detection",
            "vertex",
            "Google Vertex AI AutoML image object detection (cloud)",
        ),
        ModelType(
            "local_object_detection",
            "local",
            "Small PyTorch detector trained on the service's own machine",
        ),
    )
}


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
