"""Reading Vertex batch-prediction output files for ``vmt evaluate`` (the line parser itself is
tested in test_vertex_predictions.py)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

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


def failed(uri: str, message: str = "The image could not be decoded.") -> bytes:
    error = {"status": "INVALID_ARGUMENT", "message": message}
    return orjson.dumps({"instance": {"content": uri}, "error": error}) + b"\n"


def test_failed_instances_are_reported_once_and_their_rows_left_out(tmp_path: Path) -> None:
    out = tmp_path / "batch"
    out.mkdir()
    (out / "predictions_00001.jsonl").write_bytes(
        line("https://cdn.example/img-1.jpg", displayNames=[], confidences=[], bboxes=[])
        + failed("https://cdn.example/img-2.jpg")  # inline
    )
    (out / "errors_00001.jsonl").write_bytes(failed("https://cdn.example/img-2.jpg"))
    from vmt.formats.detect_format import vertex_prediction_files

    known = KnownRows.from_samples(SAMPLES, {"r1", "r2"})
    read = read_predictions(
        vertex_prediction_files(out), sample_for_uri=sample_finder(SAMPLES), known=known
    )
    assert read.failed_rows == {"r2"}
    [report] = read.ignored
    assert report.reason == "prediction_failed" and report.data_row_id == "r2"
    assert "https://cdn.example/img-2.jpg" in report.detail
    assert "INVALID_ARGUMENT: The image could not be decoded." in report.detail
    assert [p.data_row_id for p in read.table] == ["r1"]  # predicted, found nothing


def test_the_line_parser_refuses_a_failed_instance() -> None:
    from vmt.formats.vertex_predictions import VertexInstanceFailed, parse_prediction_line

    with pytest.raises(VertexInstanceFailed, match="could not be decoded"):
        parse_prediction_line(failed("gs://b/x.jpg"), {"gs://b/x.jpg": (10, 10)})


def test_predictions_match_the_full_location_and_never_guess_a_shared_name(
    tmp_path: Path,
) -> None:
    samples = [
        Sample("a", "gs://b/cam1/0001.jpg", 100, 100, Split.TEST, ()),
        Sample("b", "gs://b/cam2/0001.jpg", 100, 100, Split.TEST, ()),
        Sample("c", "gs://b/cam2/0002.jpg", 100, 100, Split.TEST, ()),
    ]
    path = tmp_path / "predictions_00001.jsonl"
    empty = {"displayNames": [], "confidences": [], "bboxes": []}
    path.write_bytes(
        line("gs://b/cam2/0001.jpg", **empty)  # full location: row b, never a
        + line("gs://stage/run/0001.jpg", **empty)  # a copy: file name shared by a and b
        + line("gs://stage/run/0002.jpg", **empty)  # a copy: file name of c alone
        + line("gs://stage/run/a.jpg", **empty)  # a copy named by data row id
    )
    known = KnownRows.from_samples(samples, {"a", "b", "c"})
    read = read_predictions([path], sample_for_uri=sample_finder(samples), known=known)
    assert [p.data_row_id for p in read.table] == ["b", "c", "a"]
    [ambiguous] = read.ignored
    assert (ambiguous.reason, ambiguous.line) == ("ambiguous_image", 2)
    assert "a, b" in ambiguous.detail


def test_a_nan_confidence_leaves_out_that_detection_only(tmp_path: Path) -> None:
    """Output written by Python's json.dump: the NaN detection is reported, the others kept."""
    path = tmp_path / "predictions_00001.jsonl"
    path.write_bytes(
        b'{"instance": {"content": "gs://b/x/a.jpg"}, "prediction": {"displayNames": '
        b'["car", "car", "car"], "confidences": [0.9, NaN, Infinity], "bboxes": '
        b"[[0.1, 0.5, 0.1, 0.5], [0.2, 0.6, 0.2, 0.6], [0.0, 1.0, 0.0, 1.0]]}}\n"
    )
    samples = [Sample("a", "gs://b/x/a.jpg", 100, 100, Split.TEST, ())]
    read = read_predictions([path], sample_for_uri=sample_finder(samples))
    [prediction] = list(read.table)
    assert [d.score for d in prediction.detections] == [0.9]
    assert [(r.reason, r.line) for r in read.ignored] == [("invalid_confidence", 1)] * 2
    assert "detection #2 (car): confidence nan is not a finite number" in read.ignored[0].detail
