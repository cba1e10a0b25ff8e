"""Vertex AI batch-prediction output (FORMATS.md 2.3) -> predictions in pixels.

One JSONL line per image::

    {"instance": {"content": "gs://bucket/images/abc.jpg", "mimeType": "image/jpeg"},
     "prediction": {"ids": [...], "displayNames": ["car"], "confidences": [0.7],
                    "bboxes": [[xMin, xMax, yMin, yMax]]}}

The box order is xMin, xMax, yMin, yMax (not the import file's order), as fractions of the image
size, which the output does not carry: it comes from the ground truth (``Sample.width/height``).
Boxes come back in pixels of the original image, clipped to it.

``parse_prediction`` is the one parser; ``parse_prediction_line`` (one raw line, image sizes by
URI; used by the Vertex backend) and ``read_predictions`` (output files -> columns, every broken
line reported with its number; used by ``vmt evaluate``) are built on it. A failed instance
(``error`` instead of ``prediction``, inline or in ``errors_*.jsonl``) is never read as "nothing
detected": ``parse_prediction_line`` raises `VertexInstanceFailed`, ``read_predictions`` reports
it (``prediction_failed``) and names the row in ``failed_rows``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from vmt.detection_table import DetectionTableBuilder, KnownRows, PredictionsRead
from vmt.domain import Box, Detection, Prediction, Sample
from vmt.formats.json_records import Malformed, read_records
from vmt.reasons import Reason


class VertexLineError(ValueError):
    """A batch-prediction line that cannot be read; the message says why."""


class VertexInstanceFailed(VertexLineError):
    """A batch-prediction line where Vertex reports an ``error`` for the instance: the image was
    not predicted at all (not "nothing detected"); the message holds Vertex's. ``uri`` is the
    instance's image location."""

    def __init__(self, uri: str, failure: str) -> None:
        super().__init__(f"Vertex could not predict {uri}: {failure}")
        self.uri = uri


def parse_prediction(
    line: dict[str, Any],
    *,
    data_row_id: str,
    width: int,
    height: int,
    not_finite: list[str] | None = None,
) -> Prediction:
    """One output line's detections in pixels of a ``width`` x ``height`` image.

    With ``not_finite``, a detection whose confidence is not a finite number (``NaN``, as
    Python writes it) is left out and described there; without it, it fails the line.
    Raises ``VertexLineError`` (a ``ValueError``) when the line cannot be read.
    """
    pred = line.get("prediction") or {}
    if not isinstance(pred, dict):
        raise VertexLineError("prediction is not an object")
    names = pred.get("displayNames") or []
    scores = pred.get("confidences") or []
    boxes = pred.get("bboxes") or []
    if not (isinstance(names, list) and isinstance(scores, list) and isinstance(boxes, list)):
        raise VertexLineError("displayNames, confidences and bboxes must be lists")
    if not len(names) == len(scores) == len(boxes):
        raise VertexLineError(
            "displayNames/confidences/bboxes lengths differ "
            f"({len(names)}/{len(scores)}/{len(boxes)})"
        )
    dets: list[Detection] = []
    for n, (name, score, bbox) in enumerate(zip(names, scores, boxes, strict=True), 1):
        if not isinstance(name, str) or not name:
            raise VertexLineError("a displayName is not a string")
        if not_finite is not None and type(score) is float and not math.isfinite(score):
            not_finite.append(f"detection #{n} ({name}): confidence {score} is not a finite number")
            continue
        if not _is_number(score) or not 0.0 <= score <= 1.0:
            raise VertexLineError(f"confidence {score!r} not in [0, 1]")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(_is_number, bbox))):
            raise VertexLineError(f"bbox is not [xMin, xMax, yMin, yMax]: {bbox!r}")
        x_min, x_max, y_min, y_max = (min(1.0, max(0.0, float(v))) for v in bbox)
        if x_max < x_min or y_max < y_min:
            raise VertexLineError(f"bbox {bbox!r} has max < min")
        box = Box(name, x_min * width, y_min * height, x_max * width, y_max * height)
        dets.append(Detection(box, float(score)))
    return Prediction(data_row_id, tuple(dets))


def parse_prediction_line(line: bytes, sizes: Mapping[str, tuple[int, int]]) -> Prediction:
    """The detections of one output line. ``sizes`` maps image URI -> (width, height) of the
    original image; the returned Prediction's ``data_row_id`` is the image URI (the caller maps
    it back). Raises ``VertexInstanceFailed`` for an instance Vertex could not predict (inline
    or ``errors_*.jsonl`` line), ValueError for a malformed line or an image not in ``sizes``."""
    row = json_object(line)
    uri = _content_uri(row)
    if uri is None:
        raise VertexLineError("no instance.content")
    failure = instance_error(row)
    if failure is not None:
        raise VertexInstanceFailed(uri, failure)
    if uri not in sizes:
        raise VertexLineError(f"prediction for an unknown image {uri}")
    width, height = sizes[uri]
    return parse_prediction(row, data_row_id=uri, width=width, height=height)


def json_object(line: bytes) -> dict[str, Any]:
    """One output line as the JSON object it must be; raises ``VertexLineError``."""
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise VertexLineError(f"not JSON: {exc}") from exc
    if not isinstance(row, dict):
        raise VertexLineError("not a JSON object")
    return row


def _content_uri(row: dict[str, Any]) -> str | None:
    instance = row.get("instance")
    uri = instance.get("content") if isinstance(instance, dict) else None
    return uri if isinstance(uri, str) else None


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


class AmbiguousImage(NamedTuple):
    """An image location that names no row exactly and whose file name several rows share."""

    data_row_ids: tuple[str, ...]


SampleForUri = Callable[[str], "Sample | AmbiguousImage | None"]
"""Image location -> its ground-truth row, `AmbiguousImage`, or None when no row has it."""


def read_predictions(
    paths: Iterable[Path],
    *,
    sample_for_uri: SampleForUri,
    known: KnownRows | None = None,
) -> PredictionsRead:
    """Read batch-prediction output files (``predictions_*.jsonl`` and ``errors_*.jsonl``; any
    shape `vmt.formats.json_records` reads) into columns.

    ``sample_for_uri`` maps an instance's ``content`` URI to its ground-truth row. Lines that
    cannot be used are reported (line numbers count per file; the file name is in the detail).
    An instance that failed (``error`` instead of ``prediction``) is reported once per row as
    ``prediction_failed`` with Vertex's message, and its row is in ``failed_rows``: it must be
    left out of the metrics, not scored as "nothing detected".
    """
    builder = DetectionTableBuilder(known)
    for path in paths:
        for line_no, line in read_records(path):
            _read_line(builder, path.name, line_no, line, sample_for_uri)
    return builder.result()


def _read_line(
    builder: DetectionTableBuilder,
    file_name: str,
    line_no: int,
    line: Any,
    sample_for_uri: SampleForUri,
) -> None:
    where = f"{file_name}:{line_no}"
    if type(line) is Malformed:
        builder.reject(Reason.MALFORMED_JSON, line_no, None, f"{where}: not JSON ({line.detail})")
        return
    uri = _content_uri(line) if isinstance(line, dict) else None
    if uri is None:
        builder.reject(Reason.MALFORMED_ROW, line_no, None, f"{where}: no instance.content")
        return
    sample = sample_for_uri(uri)
    if sample is None:
        builder.reject(Reason.UNKNOWN_DATA_ROW, line_no, None, f"{where}: no data row for {uri}")
        return
    if isinstance(sample, AmbiguousImage):
        ids = ", ".join(sample.data_row_ids[:5])
        detail = f"{where}: {uri} is no row's image and its file name is shared by rows {ids}"
        builder.reject(Reason.AMBIGUOUS_IMAGE, line_no, None, detail)
        return
    failure = instance_error(line)
    if failure is not None:
        if sample.data_row_id not in builder.failed_rows:
            detail = f"{where}: Vertex could not predict {uri}: {failure}"
            builder.fail(line_no, sample.data_row_id, detail)
        return
    row_id = builder.resolve_row(line_no, sample.data_row_id)
    if row_id is None:
        return
    if sample.width is None or sample.height is None:
        detail = f"{where}: data row {row_id} has no image size to scale the boxes"
        builder.reject(Reason.MISSING_DIMENSIONS, line_no, row_id, detail)
        return
    not_finite: list[str] = []
    try:
        prediction = parse_prediction(
            line,
            data_row_id=row_id,
            width=sample.width,
            height=sample.height,
            not_finite=not_finite,
        )
    except VertexLineError as exc:
        builder.reject(Reason.MALFORMED_ROW, line_no, row_id, f"{where}: {exc}")
        return
    for detail in not_finite:
        builder.reject(Reason.INVALID_CONFIDENCE, line_no, row_id, f"{where}: {detail}")
    builder.add_empty_row(row_id)
    for det in prediction.detections:
        b = det.box
        builder.add_xywh(line_no, row_id, b.label, (b.x0, b.y0, b.width, b.height), det.score)


def instance_error(line: dict[str, Any]) -> str | None:
    """Vertex's message when the instance failed (an ``error`` and no ``prediction``), else
    None. Vertex writes ``{"instance": ..., "error": {"status": ..., "message": ...}}`` inline
    or in ``errors_*.jsonl``."""
    error = line.get("error")
    if error is None or line.get("prediction") is not None:
        return None
    if isinstance(error, dict):
        message = error.get("message") or error.get("status") or "no message"
        status = error.get("status")
        text = f"{status}: {message}" if status and status != message else str(message)
    else:
        text = str(error)
    return text[:200]
