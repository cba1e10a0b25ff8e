"""Reading Vertex batch-prediction output files for ``vmt evaluate`` (the line parser itself is
tested in test_vertex_predictions.py)."""

from __future__ import annotations

from pathlib import Path

import orjson

from vmt.detection_table import KnownRows
from vmt.domain import Box, Sample, Split
from vmt.formats.evaluation_inputs import sample_finder
from vmt.formats.vertex_predictions import read_predictions

SAMPLES = [
    Sample("r1", "https://cdn.example/img-1.jpg", 200, 100, Split.TEST, (), global_key="img-1.jpg"),
    Sample("r2", "https://cdn.example/img-2.jpg", None, None, Split.TEST, (),
           global_key="img-2.jpg"),
    Sample("r3", "https://cdn.example/img-3.jpg", 10, 10, Split.TRAINING, ()),
]  # fmt: skip


def line(uri: str, **prediction: object) -> bytes:
    return orjson.dumps({"instance": {"content": uri}, "prediction": prediction}) + b"\n"


def test_files_map_staged_uris_back_to_rows_and_report_problems(tmp_path: Path) -> None:
    good = line(
        "gs://bucket/vmt/run/img-1.jpg",  # staged copy: found by file name
        displayNames=["car", "dog"],
        confidences=[0.9, 0.2],
        bboxes=[[0.1, 0.5, 0.2, 0.9], [0.0, 1.0, 0.0, 1.0]],
    )
    empty = line("gs://bucket/vmt/run/r1.png", displayNames=[], confidences=[], bboxes=[])
    lines = [
        good,
        b"{broken\n",
        line("gs://bucket/unknown.jpg", displayNames=[], confidences=[], bboxes=[]),
        line("gs://bucket/img-2.jpg", displayNames=["car"], confidences=[0.5],
             bboxes=[[0, 1, 0, 1]]),  # no image size in the ground truth
        line("gs://bucket/r3.jpg", displayNames=[], confidences=[], bboxes=[]),  # training row
        line("gs://bucket/img-1.jpg", displayNames=["car"], confidences=[0.5], bboxes=[[0, 1]]),
        empty,
    ]  # fmt: skip
    first = tmp_path / "predictions_00001.jsonl"
    first.write_bytes(b"".join(lines))
    known = KnownRows.from_samples(SAMPLES, {"r1", "r2"})
    read = read_predictions([first], sample_for_uri=sample_finder(SAMPLES), known=known)
    assert [(r.reason, r.line) for r in read.ignored] == [
        ("malformed_json", 2),
        ("unknown_data_row", 3),
        ("missing_dimensions", 4),
        ("row_not_in_evaluated_splits", 5),
        ("malformed_row", 6),
    ]
    [prediction] = list(read.table)
    assert prediction.data_row_id == "r1"
    car = prediction.detections[0]
    assert car.box == Box("car", 20.0, 20.0, 100.0, 90.0)
    assert car.score == 0.9
