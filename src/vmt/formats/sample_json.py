"""Compact JSON for the domain types the pipeline persists between stages.

One object per line (JSONL). Keys are short because a run may hold a million samples; boxes are
``[label, x0, y0, x1, y1]`` lists and detections ``[label, x0, y0, x1, y1, score]``. Pure
conversions: the caller opens and writes the files. Pairs are named by direction:
``*_to_json`` (domain -> bytes) and ``*_from_json`` (bytes or dict -> domain).
"""

from __future__ import annotations

from typing import Any

import orjson

from vmt.domain import Box, Detection, Prediction, Rejection, Sample, Split


def sample_to_json(sample: Sample) -> bytes:
    record: dict[str, Any] = {
        "id": sample.data_row_id,
        "uri": sample.image_uri,
        "w": sample.width,
        "h": sample.height,
        "split": sample.split.value,
        "boxes": [[b.label, b.x0, b.y0, b.x1, b.y1, *_given_size(b)] for b in sample.boxes],
    }
    if sample.mime_type is not None:
        record["mime"] = sample.mime_type
    if sample.global_key is not None:
        record["gk"] = sample.global_key
    if sample.line is not None:
        record["line"] = sample.line
    return orjson.dumps(record)


def sample_from_json(data: bytes | str | dict[str, Any]) -> Sample:
    record = orjson.loads(data) if isinstance(data, bytes | str) else data
    return Sample(
        data_row_id=record["id"],
        image_uri=record["uri"],
        width=record.get("w"),
        height=record.get("h"),
        split=Split(record["split"]),
        boxes=tuple(_box(b) for b in record.get("boxes", ())),
        mime_type=record.get("mime"),
        global_key=record.get("gk"),
        line=record.get("line"),
    )


def prediction_to_json(prediction: Prediction) -> bytes:
    return orjson.dumps(
        {
            "id": prediction.data_row_id,
            "dets": [
                [d.box.label, d.box.x0, d.box.y0, d.box.x1, d.box.y1, d.score, *_given_size(d.box)]
                for d in prediction.detections
            ],
        }
    )


def prediction_from_json(data: bytes | str | dict[str, Any]) -> Prediction:
    record = orjson.loads(data) if isinstance(data, bytes | str) else data
    return Prediction(
        data_row_id=record["id"],
        detections=tuple(
            Detection(_box([*d[:5], *d[6:8]]), float(d[5])) for d in record.get("dets", ())
        ),
    )


def _given_size(box: Box) -> list[float]:
    """``[width, height]`` when the box's source gave them (`vmt.domain.Box.given_width`)."""
    if box.given_width is None or box.given_height is None:
        return []
    return [box.given_width, box.given_height]


def _box(fields: list[Any]) -> Box:
    """``[label, x0, y0, x1, y1]`` and, when written (since the exact sizes), ``width,
    height``: a box read back keeps the width and height its source gave."""
    label, x0, y0, x1, y1, *size = fields
    width, height = size if len(size) == 2 else (None, None)
    return Box(str(label), x0, y0, x1, y1, width, height)


def rejection_to_json(rejection: Rejection) -> bytes:
    record: dict[str, Any] = {"reason": rejection.reason, "detail": rejection.detail}
    if rejection.line is not None:
        record["line"] = rejection.line
    if rejection.data_row_id is not None:
        record["id"] = rejection.data_row_id
    if rejection.extra:
        record["extra"] = rejection.extra
    return orjson.dumps(record, default=str)


def rejection_from_json(data: bytes | str | dict[str, Any]) -> Rejection:
    record = orjson.loads(data) if isinstance(data, bytes | str) else data
    return Rejection(
        reason=record["reason"],
        line=record.get("line"),
        data_row_id=record.get("id"),
        detail=record.get("detail", ""),
        extra=dict(record.get("extra", {})),
    )
