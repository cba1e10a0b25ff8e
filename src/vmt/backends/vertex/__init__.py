"""Vertex AI AutoML image object detection as a ``Trainer`` (see ``trainer.py``)."""

from vmt.backends.vertex.trainer import VertexTrainer

__all__ = ["VertexTrainer"]
