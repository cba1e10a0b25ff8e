"""The model types offered to Labelbox's "Train model" menu, defined once.

Each value is a key of ``GET /models`` and the ``modelType`` of ``POST /model_run``
(FORMATS.md 1.4); ``trainer`` names the training backend that serves it.
"""

from __future__ import annotations

from enum import StrEnum


class ModelType(StrEnum):
    LOCAL_OBJECT_DETECTION = "local_object_detection"
    VERTEX_AUTOML_OBJECT_DETECTION = "vertex_automl_object_detection"

    @property
    def trainer(self) -> str:
        """The trainer backend name: ``local`` or ``vertex``."""
        return _TRAINERS[self]


_TRAINERS = {
    ModelType.LOCAL_OBJECT_DETECTION: "local",
    ModelType.VERTEX_AUTOML_OBJECT_DETECTION: "vertex",
}
