"""The wire format of our serving container (``vmt serve-model``) under Vertex AI's
custom-container contract, and of the batch prediction output of a job on it.

Predict request (one instance per image; Vertex sends a batch job's JSONL lines as instances and
its ``modelParameters`` as ``parameters``)::

    {"instances": [{"image_uri": "gs://bucket/images/abc.jpg"}],
     "parameters": {"confidence_threshold": 0.05, "max_predictions": 100}}

Predict response, one entry per instance in order (Vertex requires as many predictions as
instances)::

    {"predictions": [{"boxes": [[x0, y0, x1, y1]], "labels": ["car"], "scores": [0.91],
                      "width": 640, "height": 480}]}

Boxes are in pixels of the original image. An instance that could not be predicted (an image
that cannot be read) gets ``{"error": "why"}`` in its place, so the others of the request are
still predicted.

Batch output (Vertex's layout): ``predictions_*.jsonl`` lines ``{"instance": {...},
"prediction": {...}}``; ``errors_*.jsonl`` lines ``{"instance": {...}, "error": {"status": ...,
"message": ...}}`` (a request the container refused as a whole). Both failure forms are read as
`VertexInstanceFailed`, never as "nothing detected".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vmt.domain import Box, Detection, Prediction
from vmt.formats.vertex_predictions import (
    VertexInstanceFailed,
    VertexLineError,
    instance_error,
    json_object,
)

INSTANCE_KEY = "image_uri"
MAX_URI_LENGTH = 4096
DEFAULT_CONFIDENCE_THRESHOLD = 0.05
DEFAULT_MAX_PREDICTIONS = 100


@dataclass(frozen=True, slots=True)
class PredictParameters:
    """``parameters`` of a predict request: detections scored below ``confidence_threshold``
    are left out, at most ``max_predictions`` an image are kept (highest scores)."""

    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
    max_predictions: int = DEFAULT_MAX_PREDICTIONS

    @classmethod
    def from_json(cls, value: Any) -> PredictParameters:
        """``parameters`` as sent (absent or null: the defaults). Raises ValueError saying which
        value is wrong."""
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise ValueError("parameters must be an object")
        threshold = value.get("confidence_threshold", DEFAULT_CONFIDENCE_THRESHOLD)
        limit = value.get("max_predictions", DEFAULT_MAX_PREDICTIONS)
        if not _is_number(threshold) or not 0.0 <= threshold <= 1.0:
            raise ValueError(f"confidence_threshold must be a number in [0, 1], not {threshold!r}")
        # model parameters travel as a protobuf Value: every number is a double (5 -> 5.0)
        whole = type(limit) is int or (type(limit) is float and limit.is_integer())
        if not whole or not 1 <= limit <= 1000:
            raise ValueError(f"max_predictions must be an integer in [1, 1000], not {limit!r}")
        return cls(float(threshold), int(limit))

    def to_json(self) -> dict[str, Any]:
        return {
            "confidence_threshold": self.confidence_threshold,
            "max_predictions": self.max_predictions,
        }


def instance_of(uri: str) -> dict[str, str]:
    """The instance (one JSONL line of a batch job's input) asking for ``uri``'s detections."""
    return {INSTANCE_KEY: uri}


def instance_uri(instance: Any) -> str:
    """The image location an instance names. Raises ValueError for anything but
    ``{"image_uri": "<non-empty string>"}``."""
    uri = instance.get(INSTANCE_KEY) if isinstance(instance, dict) else None
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_LENGTH:
        raise ValueError(f'an instance must be {{"{INSTANCE_KEY}": "<location>"}}')
    return uri


def prediction_json(prediction: Prediction, width: int, height: int) -> dict[str, Any]:
    """One instance's answer: its detections in pixels of its ``width`` x ``height`` image."""
    dets = prediction.detections
    return {
        "boxes": [[d.box.x0, d.box.y0, d.box.x1, d.box.y1] for d in dets],
        "labels": [d.box.label for d in dets],
        "scores": [d.score for d in dets],
        "width": width,
        "height": height,
    }


def failure_json(message: str) -> dict[str, str]:
    """One instance's answer when it could not be predicted."""
    return {"error": message[:500]}


def parse_detector_prediction(prediction: Any, *, data_row_id: str) -> Prediction:
    """One answer of ``prediction_json``'s shape as a Prediction (boxes clipped to the image).
    Raises `VertexLineError` (a ValueError) saying what is wrong."""
    if not isinstance(prediction, dict):
        raise VertexLineError("prediction is not an object")
    boxes, labels, scores = (prediction.get(k) for k in ("boxes", "labels", "scores"))
    width, height = prediction.get("width"), prediction.get("height")
    if not (isinstance(boxes, list) and isinstance(labels, list) and isinstance(scores, list)):
        raise VertexLineError("boxes, labels and scores must be lists")
    if not len(boxes) == len(labels) == len(scores):
        raise VertexLineError(
            f"boxes/labels/scores lengths differ ({len(boxes)}/{len(labels)}/{len(scores)})"
        )
    if type(width) is not int or type(height) is not int or width <= 0 or height <= 0:
        raise VertexLineError(f"width and height must be positive integers: {width!r}x{height!r}")
    dets: list[Detection] = []
    for box, label, score in zip(boxes, labels, scores, strict=True):
        if not isinstance(label, str) or not label:
            raise VertexLineError("a label is not a non-empty string")
        if not _is_number(score) or not 0.0 <= score <= 1.0:
            raise VertexLineError(f"score {score!r} not in [0, 1]")
        if not (isinstance(box, list) and len(box) == 4 and all(map(_is_number, box))):
            raise VertexLineError(f"box is not [x0, y0, x1, y1]: {box!r}")
        x0, x1 = (min(float(width), max(0.0, float(v))) for v in (box[0], box[2]))
        y0, y1 = (min(float(height), max(0.0, float(v))) for v in (box[1], box[3]))
        if x1 < x0 or y1 < y0:
            raise VertexLineError(f"box {box!r} has x1 < x0 or y1 < y0")
        dets.append(Detection(Box(label, x0, y0, x1, y1), float(score)))
    return Prediction(data_row_id, tuple(dets))


def parse_detector_line(line: bytes, sizes: Mapping[str, tuple[int, int]]) -> Prediction:
    """The detections of one batch output line; the Prediction's ``data_row_id`` is the image
    location (the caller maps it back). ``sizes`` holds the locations that were asked for.
    Raises `VertexInstanceFailed` for an instance that was not predicted (``errors_*.jsonl``
    line or an ``{"error": ...}`` answer), `VertexLineError` for a malformed line or an image
    not asked for."""
    row = json_object(line)
    try:
        uri = instance_uri(row.get("instance"))
    except ValueError as exc:
        raise VertexLineError(str(exc)) from exc
    failure = instance_error(row)
    prediction = row.get("prediction")
    if failure is None and isinstance(prediction, dict) and "error" in prediction:
        failure = str(prediction["error"])[:200]
    if failure is not None:
        raise VertexInstanceFailed(uri, failure)
    if uri not in sizes:
        raise VertexLineError(f"prediction for an image not asked for: {uri}")
    return parse_detector_prediction(prediction, data_row_id=uri)


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]
