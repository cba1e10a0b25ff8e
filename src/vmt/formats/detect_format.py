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


def _peek(path: Path) -> tuple[str, Any, Any]:
    """(first non-blank character, the first line parsed as JSON (None if it does not parse),
    the first of the first 20 lines that parses as a JSON object (None if none does))."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_PEEK)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    text = head.lstrip()
    if not text:
        raise InputError(f"{path} is empty")
    first_line: Any = None
    first_object: Any = None
    for n, line in enumerate(text.split(b"\n", 20)[:20]):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if n == 0:
            first_line = record
        if isinstance(record, dict):
            first_object = record
            break
    return chr(text[0]), first_line, first_object


def _is_export_row(record: Any) -> bool:
    return isinstance(record, dict) and ("data_row" in record or "DataRow ID" in record)


def ground_truth_format(path: Path) -> str:
    first, first_line, first_object = _peek(path)
    if _is_export_row(first_line) or (first_line is None and _is_export_row(first_object)):
        return "labelbox"  # (a broken first line does not hide an export)
    if isinstance(first_line, dict) and "images" in first_line:
        return "coco"
    if first == "{" and first_line is None:
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
    first, _, record = _peek(path)
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
