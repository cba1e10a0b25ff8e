"""Vertex AI batch prediction output (image object detection) -> ``Prediction``.

One output line::

    {"instance": {"content": "gs://b/images/abc.jpg", "mimeType": "image/jpeg"},
     "prediction": {"ids": [...], "displayNames": ["car"], "confidences": [0.7],
                    "bboxes": [[xMin, xMax, yMin, yMax]]}}

The box order is xMin, xMax, yMin, yMax (not the import order), in fractions of the image size;
boxes come back in pixels of the original image, clipped to it.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from vmt.domain import Box, Detection, Prediction


def parse_prediction_line(line: bytes, sizes: Mapping[str, tuple[int, int]]) -> Prediction:
    """The detections of one output line. ``sizes`` maps image URI -> (width, height) of the
    original image; the returned Prediction's ``data_row_id`` is the image URI (the caller maps
    it back). Raises ValueError for a malformed line or an image not in ``sizes``."""
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    instance = row.get("instance")
    uri = instance.get("content") if isinstance(instance, dict) else None
    if not isinstance(uri, str):
        raise ValueError("no instance.content")
    if uri not in sizes:
        raise ValueError(f"prediction for an unknown image {uri}")
    width, height = sizes[uri]
    prediction = row.get("prediction") or {}
    if not isinstance(prediction, dict):
        raise ValueError("prediction is not an object")
    names = prediction.get("displayNames") or []
    scores = prediction.get("confidences") or []
    boxes = prediction.get("bboxes") or []
    if not len(names) == len(scores) == len(boxes):
        raise ValueError(
            "displayNames/confidences/bboxes lengths differ "
            f"({len(names)}/{len(scores)}/{len(boxes)})"
        )
    detections = []
    for name, score, bbox in zip(names, scores, boxes, strict=True):
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise ValueError(f"bbox is not [xMin, xMax, yMin, yMax]: {bbox!r}")
        x_min, x_max, y_min, y_max = (min(1.0, max(0.0, float(v))) for v in bbox)
        box = Box(str(name), x_min * width, y_min * height, x_max * width, y_max * height)
        detections.append(Detection(box, float(score)))
    return Prediction(uri, tuple(detections))
