"""Tell the file formats ``vmt evaluate`` reads apart by their content (the first record).

Ground truth: ``labelbox`` (export NDJSON, v2 ``data_row`` rows or v1 ``DataRow ID`` rows) or
``coco`` (one JSON object with ``images``). Predictions: ``labelbox`` (prediction NDJSON rows
with ``dataRow``), ``vertex`` (batch-prediction JSONL with ``instance``/``prediction``, or a
folder of ``predictions_*.jsonl``) or ``coco`` (a JSON list of results).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from vmt.errors import InputError

GROUND_TRUTH_FORMATS = ("labelbox", "coco")
PREDICTION_FORMATS = ("labelbox", "vertex", "coco")
_PEEK = 1 << 20


def vertex_prediction_files(path: Path) -> list[Path]:
    """The output files of a batch-prediction job: ``path`` itself, or the
    ``prediction*.jsonl`` files under a folder (sorted; ``errors_*`` files are not read)."""
    if path.is_dir():
        return sorted(p for p in path.rglob("prediction*.jsonl") if p.is_file())
    return [path]


def _first_record(path: Path) -> tuple[str, Any]:
    """(first non-blank character, the first line parsed as JSON or None)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_PEEK)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    text = head.lstrip()
    if not text:
        raise InputError(f"{path} is empty")
    first = chr(text[0])
    line = text.split(b"\n", 1)[0]
    try:
        return first, orjson.loads(line)
    except orjson.JSONDecodeError:
        return first, None


def ground_truth_format(path: Path) -> str:
    first, record = _first_record(path)
    if isinstance(record, dict):
        if "data_row" in record or "DataRow ID" in record:
            return "labelbox"
        if "images" in record:
            return "coco"
    if first == "{" and record is None:
        return "coco"  # a pretty-printed JSON document, not NDJSON
    raise InputError(
        f"cannot tell the format of ground truth {path} (expected a Labelbox export NDJSON or "
        "COCO JSON); name it with --gt-format"
    )


def prediction_format(path: Path) -> str:
    if path.is_dir():
        if vertex_prediction_files(path):
            return "vertex"
        raise InputError(f"no prediction*.jsonl files under {path}")
    first, record = _first_record(path)
    if first == "[":
        return "coco"
    if isinstance(record, dict):
        if "dataRow" in record:
            return "labelbox"
        if "instance" in record and "prediction" in record:
            return "vertex"
    raise InputError(
        f"cannot tell the format of predictions {path} (expected Labelbox prediction NDJSON, "
        "Vertex batch-prediction JSONL or COCO results); name it with --pred-format"
    )
