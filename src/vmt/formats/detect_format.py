"""Tell the file formats ``vmt evaluate`` reads apart by their parsed content (the first
records, in any layout `vmt.formats.json_records` reads: one line, NDJSON, pretty-printed, the
first key on the first line, a JSON array, gzip, a BOM), never by file name or first bytes.

Ground truth: ``labelbox`` (an export: v2 ``data_row`` rows or v1 ``DataRow ID`` rows) or
``coco`` (one JSON object with ``images``). Predictions: ``labelbox`` (prediction rows with
``dataRow``), ``vertex`` (batch-prediction output with ``instance`` and ``prediction`` or
``error``, or a folder of ``predictions_*.jsonl`` / ``errors_*.jsonl``) or ``coco`` (a JSON list
of results). Every whole-file shape of `vmt.formats.json_records` is accepted; an empty
predictions file is ``empty`` (no predictions, whatever the format).
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

from vmt.errors import InputError
from vmt.formats.json_records import Shape, open_records

GROUND_TRUTH_FORMATS = ("labelbox", "coco")
PREDICTION_FORMATS = ("labelbox", "vertex", "coco")
EMPTY = "empty"
"""A predictions file with no records: no predictions, in any format."""
_FIRST_RECORDS = 20


def vertex_prediction_files(path: Path) -> list[Path]:
    """The output files of a batch-prediction job: ``path`` itself, or the
    ``prediction*.jsonl`` and ``errors*.jsonl`` files under a folder (sorted)."""
    if path.is_dir():
        found = [*path.rglob("prediction*.jsonl"), *path.rglob("errors*.jsonl")]
        return sorted(p for p in found if p.is_file())
    return [path]


def _first_records(path: Path) -> tuple[Shape, list[Any]]:
    """The file's shape and its first records that are JSON objects (up to 20 records read)."""
    with open_records(path) as (shape, records):
        values = [value for _, value in islice(records, _FIRST_RECORDS)]
    return shape, [v for v in values if isinstance(v, dict)]


_NAMES = {
    "coco": "COCO ground truth",
    "labelbox": "a Labelbox export",
    "labelbox predictions": "Labelbox prediction NDJSON",
    "vertex": "Vertex batch-prediction output",
    "coco results": "COCO results",
}


def record_kind(record: Any, shape: Shape) -> str | None:
    """What a parsed record is, from its structure: ``coco`` (a whole object with ``images``
    or ``annotations`` and ``categories``: COCO ground truth), ``labelbox`` (an export row,
    v2 ``data_row`` or v1 ``DataRow ID``), ``labelbox predictions`` (``dataRow``), ``vertex``
    (``instance`` with ``prediction`` or ``error``), ``coco results`` (``image_id``), or None."""
    if not isinstance(record, dict):
        return None
    if shape is not Shape.ARRAY and (
        "images" in record or ("annotations" in record and "categories" in record)
    ):
        return "coco"
    if "data_row" in record or "DataRow ID" in record:
        return "labelbox"
    if "dataRow" in record:
        return "labelbox predictions"
    if "instance" in record and ("prediction" in record or "error" in record):
        return "vertex"
    if "image_id" in record:
        return "coco results"
    return None


def _kinds(path: Path) -> tuple[Shape, list[str]]:
    """The file's shape and the kinds of its first records, in order (a broken or unknown
    record is skipped: a stray first line does not hide the rows after it)."""
    shape, records = _first_records(path)
    return shape, [k for r in records if (k := record_kind(r, shape)) is not None]


def ground_truth_format(path: Path) -> str:
    """``labelbox`` or ``coco``, from the parsed content (any layout `json_records` reads).

    Raises ``InputError`` for an empty file or one that is neither (saying what it looks like).
    """
    shape, kinds = _kinds(path)
    if shape is Shape.EMPTY:
        raise InputError(f"ground truth {path} is empty")
    for kind in kinds:
        if kind in GROUND_TRUTH_FORMATS:
            return kind
    looks = f": it looks like {_NAMES[kinds[0]]}" if kinds else ""
    raise InputError(
        f"cannot tell the format of ground truth {path} (expected a Labelbox export or COCO "
        f"JSON){looks}; name it with --gt-format"
    )


def prediction_format(path: Path) -> str:
    """``labelbox``, ``vertex`` or ``coco`` (or ``empty``), from the parsed content (any layout
    `json_records` reads; a folder of Vertex output files is ``vertex``).

    Raises ``InputError`` for a file that is none of them (saying what it looks like).
    """
    if path.is_dir():
        if vertex_prediction_files(path):
            return "vertex"
        raise InputError(f"no predictions*.jsonl or errors*.jsonl files under {path}")
    shape, kinds = _kinds(path)
    if shape is Shape.EMPTY:
        return EMPTY
    for kind in kinds:
        if kind in _PREDICTION_KINDS:
            return _PREDICTION_KINDS[kind]
    looks = f": it looks like {_NAMES[kinds[0]]}" if kinds else ""
    raise InputError(
        f"cannot tell the format of predictions {path} (expected Labelbox prediction NDJSON, "
        f"Vertex batch-prediction JSONL or COCO results){looks}; name it with --pred-format"
    )


_PREDICTION_KINDS = {"labelbox predictions": "labelbox", "vertex": "vertex", "coco results": "coco"}
