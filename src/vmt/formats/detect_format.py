"""Tell the file formats ``vmt evaluate`` reads apart by their content (the first records).

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


def _is_export_row(record: Any) -> bool:
    return isinstance(record, dict) and ("data_row" in record or "DataRow ID" in record)


def ground_truth_format(path: Path) -> str:
    shape, records = _first_records(path)
    if shape is Shape.EMPTY:
        raise InputError(f"ground truth {path} is empty")
    if records and "images" in records[0] and shape is not Shape.ARRAY:
        return "coco"
    if any(_is_export_row(r) for r in records):
        return "labelbox"  # (a broken first line does not hide an export)
    raise InputError(
        f"cannot tell the format of ground truth {path} (expected a Labelbox export or COCO "
        "JSON); name it with --gt-format"
    )


def prediction_format(path: Path) -> str:
    if path.is_dir():
        if vertex_prediction_files(path):
            return "vertex"
        raise InputError(f"no predictions*.jsonl or errors*.jsonl files under {path}")
    shape, records = _first_records(path)
    if shape is Shape.EMPTY:
        return EMPTY
    for record in records:
        if "dataRow" in record:
            return "labelbox"
        if "instance" in record and ("prediction" in record or "error" in record):
            return "vertex"
        if "image_id" in record:
            return "coco"
    raise InputError(
        f"cannot tell the format of predictions {path} (expected Labelbox prediction NDJSON, "
        "Vertex batch-prediction JSONL or COCO results); name it with --pred-format"
    )
