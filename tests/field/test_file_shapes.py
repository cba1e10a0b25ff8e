"""Every reader takes every whole-file shape (table: shape x reader) and gives the same rows as
from plain NDJSON; an empty predictions file is "no predictions" in every format."""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.builders.labelbox_rows import box_object, model_run_row, v1_row
from tests.conftest import VMT, cli_env
from vmt.detection_table import KnownRows
from vmt.domain import Box, Sample, Split
from vmt.formats import coco, labelbox_predictions, vertex_predictions
from vmt.formats.evaluation_inputs import read_evaluation_files, sample_finder
from vmt.formats.export_options import ExportOptions
from vmt.formats.labelbox_export import read_samples


def ndjson(rows: list[Any]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


SHAPES: dict[str, Callable[[list[Any]], bytes]] = {
    "ndjson": ndjson,
    "BOM": lambda rows: b"\xef\xbb\xbf" + ndjson(rows),
    "CRLF": lambda rows: ndjson(rows).replace(b"\n", b"\r\n"),
    "BOM + CRLF": lambda rows: b"\xef\xbb\xbf" + ndjson(rows).replace(b"\n", b"\r\n"),
    "array, one per line, trailing commas": lambda rows: (
        b"[\n" + b"".join(orjson.dumps(r) + b",\n" for r in rows) + b"]\n"
    ),
    "array, one per line": lambda rows: b"[\n" + b",\n".join(map(orjson.dumps, rows)) + b"\n]",
    "array, pretty-printed": lambda rows: orjson.dumps(rows, option=orjson.OPT_INDENT_2),
    "array, single line": lambda rows: orjson.dumps(rows),
    "array, pretty, BOM + CRLF": lambda rows: (
        b"\xef\xbb\xbf" + orjson.dumps(rows, option=orjson.OPT_INDENT_2).replace(b"\n", b"\r\n")
    ),
    "pretty-printed objects": lambda rows: b"\n".join(
        orjson.dumps(r, option=orjson.OPT_INDENT_2) for r in rows
    ),
    "gzip": lambda rows: gzip.compress(ndjson(rows)),
    "gzip, pretty array": lambda rows: gzip.compress(
        orjson.dumps(rows, option=orjson.OPT_INDENT_2)
    ),
}

EXPORT_ROWS = [
    model_run_row("r1", split="validation", objects=[box_object("car", 10, 10, 50, 40)]),
    v1_row("r2", split="test"),
    model_run_row(
        "r3", split="test", mime_type="image/jpg", objects=[box_object("dog", 1, 1, 9, 9)]
    ),
]
SAMPLES = [
    Sample("r1", "gs://b/one.jpg", 200, 100, Split.VALIDATION, (Box("car", 0, 0, 50, 50),),
           global_key="one.jpg"),
    Sample("r2", "gs://b/two.jpg", 200, 100, Split.TEST, (), global_key="two.jpg"),
]  # fmt: skip
KNOWN = KnownRows.from_samples(SAMPLES, {"r1", "r2"}, {"car"})
LB_PREDICTIONS = [
    {"uuid": "u1", "dataRow": {"id": "r1"}, "name": "car",
     "bbox": {"top": 1.0, "left": 2.0, "height": 30.0, "width": 40.0}, "confidence": 0.9},
    {"uuid": "u2", "dataRow": {"globalKey": "two.jpg"}, "name": "car",
     "bbox": {"top": 5, "left": 5, "height": 5, "width": 5}, "confidence": 0.4},
    {"uuid": "u3", "dataRow": {"id": "nope"}, "name": "car",
     "bbox": {"top": 5, "left": 5, "height": 5, "width": 5}, "confidence": 0.4},
]  # fmt: skip
VERTEX_LINES = [
    {"instance": {"content": "gs://b/one.jpg"},
     "prediction": {"displayNames": ["car"], "confidences": [0.8],
                    "bboxes": [[0.1, 0.5, 0.2, 0.6]]}},
    {"instance": {"content": "gs://b/two.jpg"}, "error": {"status": "INTERNAL", "message": "boom"}},
]  # fmt: skip
COCO_RESULTS = [
    {"image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.5},
    {"image_id": 2, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.25},
]
COCO_GT = {
    "images": [{"id": 2, "file_name": "b.jpg", "width": 100, "height": 80},
               {"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
    "categories": [{"id": 1, "name": "car"}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40],
                     "area": 1200, "iscrowd": 0}],
}  # fmt: skip
COCO_KNOWN = KnownRows.from_samples(
    [
        Sample("1", "a.jpg", 100, 80, Split.UNASSIGNED),
        Sample("2", "b.jpg", 100, 80, Split.UNASSIGNED),
    ],
    {"1", "2"},
)


def read_export(path: Path) -> Any:
    items = list(read_samples(path, ExportOptions()))
    return [
        (s.data_row_id, s.split, s.mime_type, s.boxes) if isinstance(s, Sample) else s.reason
        for s in items
    ]


def read_lb(path: Path) -> Any:
    read = labelbox_predictions.read_predictions(path, KNOWN)
    return list(read.table), [r.reason for r in read.ignored]


def read_vertex(path: Path) -> Any:
    read = vertex_predictions.read_predictions(
        [path], sample_for_uri=sample_finder(SAMPLES), known=KNOWN
    )
    return list(read.table), [r.reason for r in read.ignored], read.failed_rows


def read_coco_results(path: Path) -> Any:
    read = coco.read_results(path, categories={1: "car"}, known=COCO_KNOWN)
    return list(read.table), [r.reason for r in read.ignored]


READERS: dict[str, tuple[list[Any], Callable[[Path], Any]]] = {
    "Labelbox export": (EXPORT_ROWS, read_export),
    "Labelbox predictions": (LB_PREDICTIONS, read_lb),
    "Vertex batch output": (VERTEX_LINES, read_vertex),
    "COCO results": (COCO_RESULTS, read_coco_results),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_reader_reads_every_shape(tmp_path: Path, reader: str, shape: str) -> None:
    rows, read = READERS[reader]
    plain, shaped = tmp_path / "plain.json", tmp_path / "shaped.json"
    plain.write_bytes(ndjson(rows))
    shaped.write_bytes(SHAPES[shape](rows))
    expected = read(plain)
    assert read(shaped) == expected
    assert expected and expected[0]  # the plain file gave rows to compare


@pytest.mark.parametrize(
    "shape",
    ["single line", "pretty", "BOM", "CRLF", "gzip"],
)
def test_coco_ground_truth_in_every_shape(tmp_path: Path, shape: str) -> None:
    data = {
        "single line": orjson.dumps(COCO_GT),
        "pretty": orjson.dumps(COCO_GT, option=orjson.OPT_INDENT_2),
        "BOM": b"\xef\xbb\xbf" + orjson.dumps(COCO_GT, option=orjson.OPT_INDENT_2),
        "CRLF": orjson.dumps(COCO_GT, option=orjson.OPT_INDENT_2).replace(b"\n", b"\r\n"),
        "gzip": gzip.compress(orjson.dumps(COCO_GT)),
    }[shape]
    path = tmp_path / "gt.json"
    path.write_bytes(data)
    gt = coco.read_ground_truth(path)
    assert [s.data_row_id for s in gt.samples] == ["1", "2"]  # ascending image id
    assert [b.given_area for b in gt.samples[0].boxes] == [1200.0]


def test_mime_variants_name_the_staged_copy(tmp_path: Path) -> None:
    rows = [
        model_run_row(f"m{i}", mime_type=mime)
        for i, mime in enumerate(
            ["image/jpg", "IMAGE/JPEG", "image/jpeg; charset=binary", "Image/JPG", "image/pjpeg",
             "image/PNG", "image/x-png; q=1"]
        )
    ]  # fmt: skip
    export, out = tmp_path / "export.json", tmp_path / "out.jsonl"
    export.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    result = subprocess.run(
        [*VMT, "convert", str(export), "-o", str(out), "--image-uri-prefix", "gs://s/"],
        capture_output=True, text=True, env=cli_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    uris = [orjson.loads(line)["imageGcsUri"] for line in out.read_bytes().splitlines()]
    assert uris == [f"gs://s/m{i}.jpg" for i in range(5)] + ["gs://s/m5.png", "gs://s/m6.png"]


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xef\xbb\xbf", b"\r\n"])
@pytest.mark.parametrize("pred_format", [None, "labelbox", "vertex", "coco"])
def test_an_empty_predictions_file_is_no_predictions(
    tmp_path: Path, content: bytes, pred_format: str | None
) -> None:
    gt = tmp_path / "gt.json"
    gt.write_bytes(orjson.dumps(COCO_GT))
    predictions = tmp_path / "predictions.json"
    predictions.write_bytes(content)
    files = read_evaluation_files(gt, predictions, gt_format="coco", pred_format=pred_format)
    assert len(files.predictions.table) == 0 and files.predictions.ignored == ()
    assert len(files.evaluated) == 2
