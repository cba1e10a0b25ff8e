"""Labelbox prediction NDJSON (FORMATS.md 1.3): the rows we upload, and a reader for them.

One box per row, camelCase::

    {"uuid": "...", "dataRow": {"id": "..."}, "name": "car",
     "bbox": {"top": 20.0, "left": 10.0, "height": 50.0, "width": 100.0}, "confidence": 0.87}

The writer always sends ``confidence`` (without it Labelbox assumes 1.0 and its confidence
analysis is lost). The reader accepts ``dataRow.id`` or ``dataRow.globalKey``; rows that are not
boxes (classifications, polygons...) are skipped with a reason, broken rows are reported with
their line number, never raised.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vmt.detection_table import DetectionTableBuilder, KnownRows, PredictionsRead
from vmt.domain import Prediction
from vmt.formats.json_records import Malformed, read_records
from vmt.reasons import Reason

UuidFor = Callable[[str, int], str]
"""``(data_row_id, detection_index) -> uuid``: the same inputs must give the same uuid."""


def deterministic_uuids(namespace: str) -> UuidFor:
    """uuid5 of ``namespace/data_row_id/index``: re-uploading a run's predictions gives the same
    uuids, so a retried import never duplicates a box."""
    base = uuid.uuid5(uuid.NAMESPACE_URL, f"vmt:{namespace}")

    def uuid_for(data_row_id: str, index: int) -> str:
        return str(uuid.uuid5(base, f"{data_row_id}/{index}"))

    return uuid_for


def prediction_rows(prediction: Prediction, *, uuid_for: UuidFor) -> Iterator[dict[str, Any]]:
    """The Labelbox upload rows of one data row's detections (pixel top/left/height/width).

    Confidence is clamped into [0, 1] (Labelbox rejects anything else); a NaN score is an error.
    """
    row_id = prediction.data_row_id
    for i, det in enumerate(prediction.detections):
        if math.isnan(det.score):
            raise ValueError(f"detection {i} of data row {row_id} has a NaN score")
        box = det.box
        yield {
            "uuid": uuid_for(row_id, i),
            "dataRow": {"id": row_id},
            "name": box.label,
            "bbox": {
                "top": box.y0,
                "left": box.x0,
                "height": box.height,
                "width": box.width,
            },
            "confidence": min(1.0, max(0.0, det.score)),
        }


_BOX_KEYS = ("top", "left", "height", "width")
_NOT_BOX_KEYS = (
    "polygon", "point", "line", "mask", "answer", "answers", "location", "textSelections",
)  # fmt: skip


def _number(value: object) -> float | None:
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is int:
        return float(value)
    return None


def read_predictions(path: Path, known: KnownRows | None = None) -> PredictionsRead:
    """Read a prediction file (NDJSON or a JSON array, see `vmt.formats.json_records`) into
    columns.

    With ``known``, rows of unknown data rows, of rows outside the evaluated splits and of
    unknown classes are left out (and reported). Nothing in the file raises: each broken line
    becomes a rejection with its 1-based line number. Only an unreadable file raises
    ``InputError``.
    """
    builder = DetectionTableBuilder(known)
    evaluated = known.evaluated if known is not None else None
    classes = known.classes if known is not None else None
    rows: list[str] = []
    names: list[str] = []
    xs: list[float] = []
    ys: list[float] = []
    ws: list[float] = []
    hs: list[float] = []
    scores: list[float] = []
    isfinite = math.isfinite
    for line_no, row in read_records(path):
        try:
            ref = row["dataRow"]
            row_id = ref["id"]
            name = row["name"]
            bbox = row["bbox"]
            left, top, width, height = bbox["left"], bbox["top"], bbox["width"], bbox["height"]
            score = row["confidence"]
        except (KeyError, TypeError, IndexError):
            parsed = _read_record(builder, line_no, row)
        else:
            # The common row: every field a float/str, a known row and class. Anything else
            # (ints, globalKey, odd values, rows to reject) goes through every check, in order.
            if (
                type(left) is float
                and type(top) is float
                and type(width) is float
                and type(height) is float
                and type(score) is float
                and type(row_id) is str
                and type(name) is str
                and width >= 0.0
                and height >= 0.0
                and 0.0 <= score <= 1.0
                and name
                and isfinite(left + top + width + height)
                and (evaluated is None or row_id in evaluated)
                and (classes is None or name in classes)
            ):
                parsed = (row_id, name, left, top, width, height, score)
            else:
                parsed = _read_record(builder, line_no, row)
        if parsed is not None:
            rows.append(parsed[0])
            names.append(parsed[1])
            xs.append(parsed[2])
            ys.append(parsed[3])
            ws.append(parsed[4])
            hs.append(parsed[5])
            scores.append(parsed[6])
    builder.extend_xywh(rows, names, xs, ys, ws, hs, scores)
    return builder.result()


_Detection = tuple[str, str, float, float, float, float, float]


def _read_record(builder: DetectionTableBuilder, line_no: int, row: Any) -> _Detection | None:
    if type(row) is Malformed:
        builder.reject(Reason.MALFORMED_JSON, line_no, None, f"not JSON ({row.detail})")
        return None
    if type(row) is not dict:
        builder.reject(Reason.MALFORMED_ROW, line_no, None, "not a JSON object")
        return None
    return _read_row(builder, line_no, row)


def _read_row(
    builder: DetectionTableBuilder, line_no: int, row: dict[str, Any]
) -> _Detection | None:
    """Every check, one reason per rejected row; the detection if it is usable."""
    ref = row.get("dataRow")
    if type(ref) is not dict:
        builder.reject(Reason.MISSING_DATA_ROW, line_no, None, "no dataRow object")
        return None
    row_id = ref.get("id")
    key = ref.get("globalKey")
    if (row_id is not None and type(row_id) is not str) or (
        key is not None and type(key) is not str
    ):
        builder.reject(
            Reason.MISSING_DATA_ROW, line_no, None, "dataRow id/globalKey is not a string"
        )
        return None
    bbox = row.get("bbox")
    if bbox is None:
        kind = next((k for k in _NOT_BOX_KEYS if k in row), "no bbox")
        builder.reject(Reason.NOT_A_BOX, line_no, row_id, f"not a box prediction ({kind})")
        return None
    data_row_id = builder.resolve_row(line_no, row_id, key)
    if data_row_id is None:
        return None
    name = row.get("name")
    if type(name) is not str or not name:
        detail = "schemaId without name" if "schemaId" in row else "no class name"
        builder.reject(Reason.MISSING_NAME, line_no, data_row_id, detail)
        return None
    if type(bbox) is not dict:
        builder.reject(Reason.BOX_INVALID, line_no, data_row_id, "bbox is not an object")
        return None
    top, left, height, width = (_number(bbox.get(k)) for k in _BOX_KEYS)
    if top is None or left is None or height is None or width is None:
        detail = "bbox needs numeric top/left/height/width"
        builder.reject(Reason.BOX_INVALID, line_no, data_row_id, detail)
        return None
    if height < 0 or width < 0:
        builder.reject(
            Reason.BOX_INVALID, line_no, data_row_id, "bbox has a negative width or height"
        )
        return None
    if "confidence" in row:
        score = _number(row["confidence"])
        if score is None or not 0.0 <= score <= 1.0:
            detail = f"confidence {row['confidence']!r:.40} is not a finite number in [0, 1]"
            builder.reject(Reason.INVALID_CONFIDENCE, line_no, data_row_id, detail)
            return None
    else:
        score = 1.0
        builder.warn(Reason.MISSING_CONFIDENCE, line_no, data_row_id, "no confidence: read as 1.0")
    if not builder.known_class(line_no, data_row_id, name):
        return None
    return data_row_id, name, left, top, width, height, score
