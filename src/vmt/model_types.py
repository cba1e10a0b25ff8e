"""The model types offered to Labelbox's "Train model" menu, read from the trainer registry.

Each name is a key of ``GET /models`` and the ``modelType`` of ``POST /model_run``
(FORMATS.md 1.4); ``trainer`` names the registered trainer that runs it (``vmt run --trainer``),
``description`` what ``vmt models`` prints. Each trainer declares its model types once, in its
``TrainerSpec`` (``vmt.backends.registry``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vmt.backends.registry import model_type_offers
from vmt.errors import InputError


@dataclass(frozen=True, slots=True)
class ModelType:
    """One offered model type. ``str(model_type)`` and ``value`` are its name."""

    value: str
    trainer: str
    """The registered trainer that runs it (e.g. ``local`` or ``vertex``)."""
    description: str

    def __str__(self) -> str:
        return self.value


def model_types() -> Mapping[str, ModelType]:
    """Every offered model type by name, in registry order."""
    return {
        name: ModelType(name, spec.name, offer.description)
        for name, (offer, spec) in model_type_offers().items()
    }


def models_response() -> dict[str, dict[str, object]]:
    """The body of ``GET /models``: an object whose keys are the offered model types."""
    return {name: {} for name in model_types()}


def model_type(name: str) -> ModelType:
    """The model type called ``name``; InputError naming the offered ones otherwise."""
    offered = model_types()
    try:
        return offered[name]
    except KeyError:
        raise InputError(f"unknown model type {name!r}; offered: {', '.join(offered)}") from None
