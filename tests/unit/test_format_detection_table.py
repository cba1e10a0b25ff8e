"""Format detection, table-driven: every format x every layout the readers accept x every
reader. Each file is found to be its format (and never another: the other detector refuses it)
and read whole by its reader, with no format named.

Layouts: NDJSON (with and without a stray broken first line), one line, JSON arrays (one line,
one element per line with trailing commas, pretty-printed), pretty-printed objects one after
another, objects with the first key on the first line and the rest on later lines; each plain,
with a UTF-8 BOM, gzip-compressed, and both."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.builders.labelbox_rows import box_object, model_run_row, project_row, v1_row
from vmt.errors import InputError
from vmt.formats.detect_format import ground_truth_format, prediction_format
from vmt.formats.evaluation_inputs import read_evaluation_files, read_ground_truth
from vmt.formats.export_options import ExportOptions
from vmt.formats.labelbox_export import read_samples

IDS = ("dr-1", "dr-2", "dr-3")


def _uri(i: str) -> str:
    return f"gs://bucket/images/{i}.jpg"


def _project_row(i: str) -> dict[str, Any]:
    return project_row(i, row_data=_uri(i))


EXPORTS: dict[str, list[dict[str, Any]]] = {
    "model-run export": [model_run_row(i, split="validation", row_data=_uri(i)) for i in IDS],
    "project export": [_project_row(i) for i in IDS],
    "v1 export": [v1_row(i, split="validation", row_data=_uri(i)) for i in IDS],
}
COCO_GT: dict[str, Any] = {
    "images": [
        {"id": n, "file_name": f"{i}.jpg", "width": 1000, "height": 500}
        for n, i in enumerate(IDS, 1)
    ],
    "annotations": [
        {"id": n, "image_id": n, "category_id": 1, "bbox": [10, 20, 30, 40], "area": 1200}
        for n in range(1, len(IDS) + 1)
    ],
    "categories": [{"id": 1, "name": "car"}],
}
PREDICTIONS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    # name: (format, rows)
    "Labelbox predictions": (
        "labelbox",
        [
            {"uuid": f"u-{i}", "dataRow": {"id": i}, "name": "car", "confidence": 0.5,
             "bbox": {"left": 10.0, "top": 20.0, "width": 30.0, "height": 40.0}}
            for i in IDS
        ],
    ),
    "Vertex output": (
        "vertex",
        [
            {"instance": {"content": _uri(i), "mimeType": "image/jpeg"},
             "prediction": {"ids": ["1"], "displayNames": ["car"], "confidences": [0.5],
                            "bboxes": [[0.01, 0.04, 0.04, 0.12]]}}
            for i in IDS
        ],
    ),
    "COCO results": (
        "coco",
        [
            {"image_id": n, "category_id": 1, "bbox": [10.0, 20.0, 30.0, 40.0], "score": 0.5}
            for n in range(1, len(IDS) + 1)
        ],
    ),
}  # fmt: skip


def _first_key_first_line(value: dict[str, Any], indent: bool = False) -> bytes:
    """``{"k1": v1,`` on the first line, each further key on a line of its own (the values
    pretty-printed too with ``indent``)."""
    parts = []
    for key, item in value.items():
        body = json.dumps(item, indent=2) if indent else json.dumps(item)
        parts.append(json.dumps(key) + ": " + body)
    return ("{" + ",\n ".join(parts) + "}").encode()


ROW_LAYOUTS: dict[str, Callable[[list[dict[str, Any]]], bytes]] = {
    "ndjson": lambda rows: b"".join(orjson.dumps(r) + b"\n" for r in rows),
    "ndjson, stray first line": lambda rows: (
        b'{"data":\n' + b"".join(orjson.dumps(r) + b"\n" for r in rows)
    ),
    "array, one line": lambda rows: orjson.dumps(rows),
    "array, one per line": lambda rows: (
        b"[\n" + b",\n".join(orjson.dumps(r) for r in rows) + b",\n]\n"
    ),
    "array, pretty-printed": lambda rows: json.dumps(rows, indent=2).encode(),
    "pretty-printed objects": lambda rows: b"\n".join(
        json.dumps(r, indent=2).encode() for r in rows
    ),
    "first key on the first line": lambda rows: b"\n".join(_first_key_first_line(r) for r in rows),
    "first key on the first line, pretty values": lambda rows: b"\n".join(
        _first_key_first_line(r, indent=True) for r in rows
    ),
}
DOCUMENT_LAYOUTS: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "one line": orjson.dumps,
    "pretty-printed": lambda doc: json.dumps(doc, indent=2).encode(),
    "pretty-printed with tabs": lambda doc: json.dumps(doc, indent="\t").encode(),
    "first key on the first line": _first_key_first_line,
    "first key on the first line, pretty values": lambda doc: _first_key_first_line(doc, True),
}
WRAPPERS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda data: data,
    "BOM": lambda data: b"\xef\xbb\xbf" + data,
    "gzip": gzip.compress,
    "gzip+BOM": lambda data: gzip.compress(b"\xef\xbb\xbf" + data),
}


@dataclass(frozen=True)
class File:
    kind: str
    """The format's name in the table."""
    content: bytes


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _ground_truth_files() -> list[Any]:
    cases = []
    for wrap_name, wrap in WRAPPERS.items():
        for layout_name, layout in ROW_LAYOUTS.items():
            for kind, rows in EXPORTS.items():
                data = wrap(layout(rows))
                case = f"{kind}-{layout_name}-{wrap_name}"
                cases.append(pytest.param(kind, data, "stray" in layout_name, id=case))
        for layout_name, doc_layout in DOCUMENT_LAYOUTS.items():
            data = wrap(doc_layout(COCO_GT))
            cases.append(pytest.param("COCO", data, False, id=f"COCO-{layout_name}-{wrap_name}"))
    return cases


@pytest.mark.parametrize(("kind", "data", "stray"), _ground_truth_files())
def test_ground_truth(tmp_path: Path, kind: str, data: bytes, stray: bool) -> None:
    path = _write(tmp_path, "gt", data)
    expected = "coco" if kind == "COCO" else "labelbox"
    assert ground_truth_format(path) == expected
    with pytest.raises(InputError, match="--pred-format"):
        prediction_format(path)  # ground truth is never taken for predictions
    gt = read_ground_truth(path)
    assert gt.format == expected
    assert sorted(len(s.boxes) for s in gt.samples) == [1, 1, 1]
    assert [(r.reason, r.line) for r in gt.rejections] == ([("malformed_json", 1)] if stray else [])
    if expected == "labelbox":  # vmt convert's reader reads the same rows
        options = ExportOptions(unassigned="training")
        rows = [s for s in read_samples(path, options) if not hasattr(s, "reason")]
        assert len(rows) == len(IDS)


def _prediction_files() -> list[Any]:
    cases = []
    for wrap_name, wrap in WRAPPERS.items():
        for layout_name, layout in ROW_LAYOUTS.items():
            for kind, (_, rows) in PREDICTIONS.items():
                data = wrap(layout(rows))
                case = f"{kind}-{layout_name}-{wrap_name}"
                cases.append(pytest.param(kind, data, "stray" in layout_name, id=case))
    return cases


@pytest.mark.parametrize(("kind", "data", "stray"), _prediction_files())
def test_predictions(tmp_path: Path, kind: str, data: bytes, stray: bool) -> None:
    fmt, _ = PREDICTIONS[kind]
    pred = _write(tmp_path, "pred", data)
    assert prediction_format(pred) == fmt
    with pytest.raises(InputError, match="--gt-format"):
        ground_truth_format(pred)  # predictions are never taken for ground truth
    gt_rows = orjson.dumps(COCO_GT) if fmt == "coco" else EXPORTS["model-run export"]
    gt = _write(
        tmp_path,
        "gt",
        gt_rows if isinstance(gt_rows, bytes) else b"\n".join(map(orjson.dumps, gt_rows)),
    )
    files = read_evaluation_files(gt, pred)
    assert files.prediction_format == fmt
    assert len(files.predictions.table) == len(IDS)
    ignored = [(r.reason, r.line) for r in files.predictions.ignored]
    assert ignored == ([("malformed_json", 1)] if stray else [])


def test_the_first_key_layout_of_the_field_case_is_coco(tmp_path: Path) -> None:
    """The layout `vmt evaluate` refused before (``{"images":[...],`` on line 1, the rest on
    later lines): found to be COCO, and read as the same document as on one line."""
    data = (
        b'{"images":' + orjson.dumps(COCO_GT["images"]) + b",\n"
        b'"categories":' + orjson.dumps(COCO_GT["categories"]) + b",\n"
        b'"annotations":[\n'
        + b",\n".join(orjson.dumps(a) for a in COCO_GT["annotations"])
        + b"\n]}\n"
    )
    path = _write(tmp_path, "gt.json", data)
    assert ground_truth_format(path) == "coco"
    one_line = _write(tmp_path, "one.json", orjson.dumps(COCO_GT))
    assert read_ground_truth(path).samples == read_ground_truth(one_line).samples


def test_a_box_object_is_no_format(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.json", orjson.dumps(box_object()))
    with pytest.raises(InputError, match="--gt-format"):
        ground_truth_format(path)
    with pytest.raises(InputError, match="--pred-format"):
        prediction_format(path)
