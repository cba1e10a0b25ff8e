"""The conversion rules of issue 2, one table row per rule and boundary."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.builders.labelbox_rows import (
    box_object,
    lines,
    model_run_row,
    polygon_object,
    project_row,
    v1_row,
)
from vmt.domain import Box, Rejection, Sample, Split
from vmt.formats.conversion_stats import EXAMPLES_PER_CODE
from vmt.formats.export_options import ExportOptions, auto_split
from vmt.formats.labelbox_export import ConversionStats, parse_lines, read_samples
from vmt.reasons import EXPORT_ROW_CHECKS


def parse(*rows: Any, **options: Any) -> tuple[list[Sample | Rejection], ConversionStats]:
    stats = ConversionStats()
    items = list(parse_lines(lines(*rows), ExportOptions(**options), stats))
    assert stats.rows_read == stats.rows_written + stats.rows_rejected
    return items, stats


def only_sample(*rows: Any, **options: Any) -> tuple[Sample, ConversionStats]:
    items, stats = parse(*rows, **options)
    assert len(items) == 1 and isinstance(items[0], Sample), items
    return items[0], stats


def reasons(items: list[Sample | Rejection]) -> list[str]:
    return [item.reason if isinstance(item, Rejection) else "ok" for item in items]


# --- blank lines, line numbers -----------------------------------------------------------------


def test_blank_lines_are_skipped_and_not_counted_but_keep_line_numbers() -> None:
    items, stats = parse(b"", b"\n", b"  \r\n", model_run_row(), b"\t\n")
    assert stats.rows_read == 1
    assert [item.line for item in items] == [4]


def test_read_samples_streams_a_file(tmp_path: Path) -> None:
    export = tmp_path / "export.ndjson"
    export.write_bytes(b"".join(lines(model_run_row("a"), b"\n", b"{oops\n", model_run_row("b"))))
    stats = ConversionStats()
    items = list(read_samples(export, ExportOptions(), stats))
    assert [(reasons([i])[0], i.line) for i in items] == [
        ("ok", 1),
        ("malformed_json", 3),
        ("ok", 4),
    ]
    assert (stats.rows_read, stats.rows_written, stats.rejected) == (3, 2, {"malformed_json": 1})


# --- rejection codes -----------------------------------------------------------------------------

_two_runs = {"run-2": {"split": "training", "labels": []}}
_GT = {"require_label": True, "require_boxes": False, "keep_unassigned": True}


def _unlabelled(row: dict[str, Any], labels: Any = ()) -> dict[str, Any]:
    """``row`` with the labels of its (only) run or project replaced (default: none)."""
    row = copy.deepcopy(row)
    sections = row.get("projects") or next(iter(row["experiments"].values()))["runs"]
    for section in sections.values():
        if labels is None:
            section.pop("labels")
        else:
            section["labels"] = list(labels)
    return row


REJECTIONS: list[tuple[str, Any, dict[str, Any], str]] = [
    # (case, row or raw bytes, options, expected reason)
    ("truncated JSON", b'{"data_row": {"id": "x"', {}, "malformed_json"),
    ("invalid UTF-8", b"\xff\xfe\xfd\n", {}, "malformed_json"),
    ("NaN is read, as Python writes it", b'{"a": NaN}', {}, "unrecognized_row"),
    ("nan (lower case) is not JSON", b'{"a": nan}', {}, "malformed_json"),
    ("NaN inside a string does not make JSON", b'{"a": "NaN}', {}, "malformed_json"),
    ("JSON array", b"[1, 2]", {}, "unrecognized_row"),
    ("JSON string", b'"hello"', {}, "unrecognized_row"),
    ("object without a data row", {"foo": 1}, {}, "unrecognized_row"),
    ("data_row without id", {"data_row": {"row_data": "gs://b/x"}}, {}, "unrecognized_row"),
    ("empty id", model_run_row(""), {}, "unrecognized_row"),
    ("id not a string", {**model_run_row(), "data_row": {"id": 7}}, {}, "unrecognized_row"),
    ("data_row not an object", {**model_run_row(), "data_row": "x"}, {}, "unrecognized_row"),
    ("no run or project", {"data_row": {"id": "x"}}, {}, "unrecognized_row"),
    ("empty runs", {**model_run_row(), "experiments": {"m": {"runs": {}}}}, {}, "unrecognized_row"),
    (
        "run not an object",
        {**model_run_row(), "experiments": {"m": {"runs": {"r": 3}}}},
        {},
        "unrecognized_row",
    ),
    ("chosen run absent", model_run_row(), {"model_run_id": "other"}, "unrecognized_row"),
    ("v1 without Label", {"DataRow ID": "x", "Labeled Data": "gs://b/x"}, {}, "unrecognized_row"),
    ("v1 empty id", v1_row(""), {}, "unrecognized_row"),
    ("two runs, none chosen", model_run_row(extra_runs=_two_runs), {}, "ambiguous_run"),
    ("two projects", {**project_row(), "projects": {"p1": {}, "p2": {}}}, {}, "ambiguous_run"),
    ("video", model_run_row(mime_type="video/mp4"), {}, "not_an_image"),
    ("pdf", model_run_row(mime_type="application/pdf"), {}, "not_an_image"),
    (
        "no media attributes",
        {**model_run_row(), "media_attributes": None},
        {},
        "missing_dimensions",
    ),
    ("no width", model_run_row(width=None), {}, "missing_dimensions"),
    ("zero height", model_run_row(height=0), {}, "missing_dimensions"),
    ("negative width", model_run_row(width=-5), {}, "missing_dimensions"),
    ("width as string", model_run_row(width="1000"), {}, "missing_dimensions"),
    ("fractional width", model_run_row(width=999.5), {}, "missing_dimensions"),
    ("width true", model_run_row(width=True), {}, "missing_dimensions"),
    ("no split", model_run_row(split=None), {}, "unassigned_split"),
    ("UNASSIGNED", model_run_row(split="UNASSIGNED"), {}, "unassigned_split"),
    ("misspelt split", model_run_row(split="trainning"), {}, "unassigned_split"),
    ("split not a string", model_run_row(split=["training"]), {}, "unassigned_split"),
    ("project rows have no split", project_row(), {}, "unassigned_split"),
    ("501 boxes", model_run_row(objects=[box_object()] * 501), {}, "too_many_boxes"),
    ("no objects", model_run_row(objects=[]), {}, "no_boxes"),
    ("only a polygon", model_run_row(objects=[polygon_object()]), {}, "no_boxes"),
    ("every box too small", model_run_row(objects=[box_object(width=1.0)]), {}, "no_boxes"),
    (
        "no labels",
        {**model_run_row(), "experiments": {"m": {"runs": {"r": {"split": "test", "labels": []}}}}},
        {},
        "no_boxes",
    ),
    ("objects not a list", model_run_row(objects={"a": 1}), {}, "no_boxes"),  # type: ignore[arg-type]
    ("ground truth: run row with no label", _unlabelled(model_run_row()), _GT, "unlabelled_row"),
    ("ground truth: project row still to label", _unlabelled(project_row()), _GT, "unlabelled_row"),
]


@pytest.mark.parametrize(
    ("row", "options", "expected"),
    [pytest.param(row, options, expected, id=case) for case, row, options, expected in REJECTIONS],
)
def test_rejection_codes(row: Any, options: dict[str, Any], expected: str) -> None:
    items, stats = parse(row, **options)
    assert reasons(items) == [expected]
    rejection = items[0]
    assert isinstance(rejection, Rejection)
    assert rejection.line == 1
    assert rejection.detail
    assert stats.rejected == {expected: 1}
    assert stats.examples[expected] == [
        {"line": 1, "data_row_id": rejection.data_row_id, "detail": rejection.detail}
    ]


def test_every_parser_code_is_covered() -> None:
    covered = {expected for *_, expected in REJECTIONS} | {"duplicate_row"}
    assert covered == set(EXPORT_ROW_CHECKS) - {"not_in_gcs"}


def test_500_boxes_are_allowed() -> None:
    sample, _ = only_sample(model_run_row(objects=[box_object()] * 500))
    assert len(sample.boxes) == 500


def test_box_count_counts_box_objects_only() -> None:
    objects = [box_object()] * 500 + [polygon_object()] * 10
    sample, stats = only_sample(model_run_row(objects=objects))
    assert len(sample.boxes) == 500
    assert stats.warnings == {"unsupported_annotation": 10}


def test_duplicate_rows_first_occurrence_wins() -> None:
    first = model_run_row("same", objects=[box_object("first")])
    again = model_run_row("same", objects=[box_object("second")])
    items, _ = parse(first, model_run_row("other"), again)
    assert reasons(items) == ["ok", "ok", "duplicate_row"]
    assert isinstance(items[0], Sample) and items[0].boxes[0].label == "first"
    assert items[2].line == 3 and items[2].data_row_id == "same"


# --- check order: parse, recognise, run, duplicate, image, dimensions, split, count, boxes
CHECK_ORDER: list[tuple[str, list[Any], list[str]]] = [
    (
        "run selection before duplicate",
        [model_run_row("a"), model_run_row("a", extra_runs=_two_runs)],
        ["ok", "ambiguous_run"],
    ),
    (
        "duplicate before image type",
        [model_run_row("a"), model_run_row("a", mime_type="video/mp4")],
        ["ok", "duplicate_row"],
    ),
    (
        "a rejected row still claims its id",
        [model_run_row("a", mime_type="video/mp4"), model_run_row("a")],
        ["not_an_image", "duplicate_row"],
    ),
    (
        "rows rejected before the duplicate check do not claim their id",
        [model_run_row("a", extra_runs=_two_runs), model_run_row("a")],
        ["ambiguous_run", "ok"],
    ),
    (
        "image type before dimensions",
        [model_run_row(mime_type="text/plain", width=None)],
        ["not_an_image"],
    ),
    ("dimensions before split", [model_run_row(width=None, split=None)], ["missing_dimensions"]),
    (
        "split before box count",
        [model_run_row(split="none", objects=[box_object()] * 501)],
        ["unassigned_split"],
    ),
    (
        "box count before box filtering",
        [model_run_row(objects=[box_object(width=0.0)] * 501)],
        ["too_many_boxes"],
    ),
]


@pytest.mark.parametrize(
    ("rows", "expected"), [pytest.param(r, e, id=case) for case, r, e in CHECK_ORDER]
)
def test_check_order(rows: list[Any], expected: list[str]) -> None:
    items, _ = parse(*rows)
    assert reasons(items) == expected


# --- splits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("training", Split.TRAINING),
        ("TRAINING", Split.TRAINING),
        ("train", Split.TRAINING),
        ("Train", Split.TRAINING),
        ("validation", Split.VALIDATION),
        ("VAL", Split.VALIDATION),
        ("val", Split.VALIDATION),
        ("test", Split.TEST),
        ("TEST", Split.TEST),
    ],
)
def test_split_spellings(raw: str, expected: Split) -> None:
    sample, stats = only_sample(model_run_row(split=raw))
    assert sample.split is expected
    assert stats.classes == {"car": {expected.value: 1}}


@pytest.mark.parametrize(
    ("policy", "keep", "expected"),
    [
        ("skip", False, "unassigned_split"),
        ("skip", True, Split.UNASSIGNED),
        ("training", False, Split.TRAINING),
        ("validation", False, Split.VALIDATION),
        ("test", False, Split.TEST),
        ("test", True, Split.TEST),  # an assignment wins over keeping unassigned
    ],
)
def test_unassigned_policies(policy: str, keep: bool, expected: Any) -> None:
    items, _ = parse(model_run_row(split=None), unassigned=policy, keep_unassigned=keep)
    got = items[0].split if isinstance(items[0], Sample) else items[0].reason
    assert got == expected


def test_assigned_rows_ignore_the_unassigned_policy() -> None:
    sample, _ = only_sample(model_run_row(split="val"), unassigned="test")
    assert sample.split is Split.VALIDATION


def test_auto_split_is_sha256_of_the_id_mod_10() -> None:
    ids = [f"clf{i:06d}" for i in range(2000)]
    items, _ = parse(*[model_run_row(i, split=None) for i in ids], unassigned="auto")
    buckets = {"training": 0, "validation": 0, "test": 0}
    for data_row_id, item in zip(ids, items, strict=True):
        bucket = int(hashlib.sha256(data_row_id.encode()).hexdigest(), 16) % 10
        expected = "training" if bucket < 8 else ("validation" if bucket == 8 else "test")
        assert isinstance(item, Sample) and item.split.value == expected
        assert auto_split(data_row_id).value == expected
        buckets[expected] += 1
    assert (
        1450 < buckets["training"] < 1750 and buckets["validation"] > 120 and buckets["test"] > 120
    )


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unassigned must be one of"):
        ExportOptions(unassigned="train")


# --- boxes (image 1000 x 500; 1% is 10 x 5 px) ---------------------------------------------------

BOXES: list[
    tuple[str, tuple[Any, Any, Any, Any], tuple[float, float, float, float] | None, str | None]
] = [
    # (case, (left, top, width, height), kept box x0 y0 x1 y1 or None, warning)
    ("inside", (10.0, 20.0, 30.0, 40.0), (10, 20, 40, 60), None),
    ("integers", (10, 20, 30, 40), (10, 20, 40, 60), None),
    ("the whole image", (0.0, 0.0, 1000.0, 500.0), (0, 0, 1000, 500), None),
    ("exactly on the right/bottom border", (900, 400, 100, 100), (900, 400, 1000, 500), None),
    ("negative origin", (-10.0, -5.0, 50.0, 50.0), (0, 0, 40, 45), "box_clipped"),
    ("past the right and bottom", (950, 480, 100, 100), (950, 480, 1000, 500), "box_clipped"),
    ("bigger than the image", (-1, -1, 2000, 2000), (0, 0, 1000, 500), "box_clipped"),
    ("exactly 1% wide", (100, 100, 10, 50), (100, 100, 110, 150), None),
    ("exactly 1%, floats", (100.0, 100.0, 10.0, 50.0), (100, 100, 110, 150), None),
    ("exactly 8 px high (over 1%)", (100, 100, 50, 8), (100, 100, 150, 108), None),
    ("exactly 8 x 8 px, floats", (100.0, 100.0, 8.0, 8.0), None, "box_too_small"),
    ("just under 8 px high (over 1%)", (100, 100, 50, 7.99), None, "box_too_small"),
    ("7 x 7 px", (100, 100, 7, 7), None, "box_too_small"),
    ("8 px after clipping", (-42, 0, 50, 50), None, "box_too_small"),
    ("just under 8 px after clipping", (0, 492.5, 50, 50), None, "box_too_small"),
    ("exactly on the border, floats", (900.0, 400.0, 100.0, 100.0), (900, 400, 1000, 500), None),
    ("just past the border", (900.0, 400.0, 100.5, 100.0), (900, 400, 1000, 500), "box_clipped"),
    ("just left of the border", (-0.25, 0.0, 100.0, 100.0), (0, 0, 99.75, 100), "box_clipped"),
    ("exactly 1% after clipping", (-90, -50, 100, 100), (0, 0, 10, 50), "box_clipped"),
    ("exactly 8 px after clipping", (0, 492, 50, 50), (0, 492, 50, 500), "box_clipped"),
    ("just under 1% wide", (100, 100, 9.99, 50), None, "box_too_small"),
    ("just under 1% high", (100, 100, 50, 4.99), None, "box_too_small"),
    ("under 1% after clipping", (-95, 0, 100, 100), None, "box_too_small"),
    ("zero width", (10, 10, 0, 10), None, "box_degenerate"),
    ("negative height", (10, 10, 10, -10), None, "box_degenerate"),
    ("entirely right of the image", (1000, 10, 50, 50), None, "box_degenerate"),
    ("entirely above the image", (10, -100, 50, 100), None, "box_degenerate"),
    ("overflows to infinity", (1e308, 0, 1e308, 10), None, "box_degenerate"),
    ("huge but clipped", (0, 0, 1e308, 1e308), (0, 0, 1000, 500), "box_clipped"),
    ("geometry as strings", ("10", "20", "30", "40"), None, "box_invalid"),
    ("geometry as booleans", (True, 0, 30, 40), None, "box_invalid"),
    ("geometry null", (None, 0, 30, 40), None, "box_invalid"),
]


@pytest.mark.parametrize(
    ("ltwh", "expected", "warning"),
    [pytest.param(ltwh, exp, warn, id=case) for case, ltwh, exp, warn in BOXES],
)
def test_boxes(
    ltwh: tuple[Any, Any, Any, Any],
    expected: tuple[float, float, float, float] | None,
    warning: str | None,
) -> None:
    anchor = box_object("anchor", 500, 250, 100, 100)  # keeps the row when the box is dropped
    row = model_run_row(objects=[box_object("car", *ltwh), anchor], width=1000, height=500)
    sample, stats = only_sample(row)
    kept = [(b.x0, b.y0, b.x1, b.y1) for b in sample.boxes if b.label == "car"]
    assert kept == ([expected] if expected else [])
    assert stats.warnings == ({warning: 1} if warning else {})
    assert stats.boxes_written == len(sample.boxes)


@pytest.mark.parametrize(
    ("width", "side"),
    [(1920, 19.2), (4032, 40.32), (1001, 10.01), (3333, 33.33), (8192, 81.92)],
)
def test_exactly_one_percent_is_kept_for_odd_sizes(width: int, side: float) -> None:
    row = model_run_row(objects=[box_object("car", 0, 0, side, side)], width=width, height=width)
    sample, stats = only_sample(row)
    assert len(sample.boxes) == 1 and stats.warnings == {}


@pytest.mark.parametrize(("width", "side"), [(640, 6.4), (333, 3.33), (101, 1.01)])
def test_one_percent_under_8_px_is_too_small_and_says_why(width: int, side: float) -> None:
    row = model_run_row(
        objects=[box_object("car", 0, 0, side, side), box_object("bus", 0, 0, 8, 8)],
        width=width,
        height=width,
    )
    sample, stats = only_sample(row)
    assert [b.label for b in sample.boxes] == ["bus"]
    assert stats.warnings == {"box_too_small": 1}
    assert "8 x 8 px" in stats.examples["box_too_small"][0]["detail"]


def test_ground_truth_keeps_every_labelled_box() -> None:
    objects = [box_object("car", 0, 0, 2, 2)] * 501
    items, stats = parse(model_run_row(objects=objects), **asdict(ExportOptions.ground_truth()))
    assert isinstance(items[0], Sample) and len(items[0].boxes) == 501
    assert stats.warnings == {}


def test_geometry_keys_missing_or_wrong_shape() -> None:
    broken: list[Any] = [
        {"name": "a", "bounding_box": {"left": 1, "top": 1, "width": 5}},
        {"name": "b", "bounding_box": [1, 2, 3, 4]},
        {"name": "c", "bounding_box": "1,2,3,4"},
        {"bounding_box": {"left": 1, "top": 1, "width": 50, "height": 50}},
        {"name": "", "bounding_box": {"left": 1, "top": 1, "width": 50, "height": 50}},
    ]
    items, stats = parse(model_run_row(objects=[*broken, box_object()]))
    assert reasons(items) == ["ok"]
    assert stats.warnings == {"box_invalid": 5}


def test_name_falls_back_to_value() -> None:
    obj = box_object("Car")
    del obj["name"]
    sample, _ = only_sample(model_run_row(objects=[obj]))
    assert sample.boxes[0].label == "car"


def test_non_box_objects_are_ignored_with_a_warning() -> None:
    objects = [polygon_object(), box_object("car"), {"annotation_kind": "ImagePoint"}, 42, "x"]
    sample, stats = only_sample(model_run_row(objects=objects))
    assert [b.label for b in sample.boxes] == ["car"]
    assert stats.warnings == {"unsupported_annotation": 4}
    assert stats.examples["unsupported_annotation"][0]["detail"] == "ignored ImagePolygon"


def test_boxes_keep_input_order_and_utf8_names() -> None:
    names = ["voiture électrique", "自転車", "🚗 car", 'quote " back\\slash']
    objects = [box_object(name, 10 * i, 10, 20, 20) for i, name in enumerate(names)]
    sample, stats = only_sample(model_run_row(objects=objects))
    assert [b.label for b in sample.boxes] == names
    assert set(stats.classes) == set(names)


def test_first_label_is_used() -> None:
    row = model_run_row(objects=[box_object("first")], extra_labels=[[box_object("second")]])
    sample, _ = only_sample(row)
    assert [b.label for b in sample.boxes] == ["first"]


# --- formats: model run, project, v1 -------------------------------------------------------------


def test_model_run_row_becomes_a_sample() -> None:
    sample, stats = only_sample(
        model_run_row("dr-9", row_data="gs://b/i.png", mime_type="image/png")
    )
    assert sample == Sample(
        data_row_id="dr-9",
        image_uri="gs://b/i.png",
        width=1000,
        height=500,
        split=Split.TRAINING,
        boxes=(Box("car", 10.0, 20.0, 40.0, 60.0),),
        mime_type="image/png",
        global_key="dr-9.jpg",
        line=1,
    )
    assert (stats.rows_written, stats.boxes_written) == (1, 1)


def test_model_run_id_selects_among_runs() -> None:
    other = model_run_row(objects=[box_object("other")], split="test")["experiments"]["model-1"][
        "runs"
    ]
    row = model_run_row(objects=[box_object("mine")], extra_runs={"run-2": other["run-1"]})
    sample, _ = only_sample(row, model_run_id="run-2")
    assert (sample.split, sample.boxes[0].label) == (Split.TEST, "other")


def test_runs_of_several_models_are_ambiguous_without_a_choice() -> None:
    row = model_run_row()
    row["experiments"]["model-2"] = {"runs": {"run-9": {"split": "test", "labels": []}}}
    items, _ = parse(row)
    assert reasons(items) == ["ambiguous_run"]
    assert "run-1" in items[0].detail and "run-9" in items[0].detail  # type: ignore[union-attr]


def test_project_rows() -> None:
    sample, _ = only_sample(
        project_row("p-row", objects=[box_object("tree")]), unassigned="validation"
    )
    assert (sample.data_row_id, sample.split, sample.boxes[0].label) == (
        "p-row",
        Split.VALIDATION,
        "tree",
    )


def test_project_id_is_selected_like_a_run() -> None:
    row = project_row(project_id="p-1")
    row["projects"]["p-2"] = {"labels": [{"annotations": {"objects": [box_object("x")]}}]}
    sample, _ = only_sample(row, model_run_id="p-2", unassigned="training")
    assert sample.boxes[0].label == "x"


def test_v1_rows() -> None:
    objects = [
        {
            "title": "Car",
            "value": "car",
            "bbox": {"top": 20, "left": 10, "height": 40, "width": 30},
        },
        {"value": "truck", "bbox": {"top": 0, "left": 0, "height": 50, "width": 50}},
        {"title": "road", "polygon": [{"x": 1, "y": 2}]},
    ]
    row = v1_row("v1-row", objects=objects, split="Validation", mime_type="image/png")
    sample, stats = only_sample(row)
    assert sample.data_row_id == "v1-row"
    assert sample.image_uri == "gs://bucket/images/dr-1.jpg"
    assert sample.split is Split.VALIDATION
    assert sample.mime_type == "image/png"
    assert sample.boxes == (Box("Car", 10, 20, 40, 60), Box("truck", 0, 0, 50, 50))
    assert stats.warnings == {"unsupported_annotation": 1}


def test_v1_skipped_label_has_no_boxes() -> None:
    row = v1_row()
    row["Label"] = {}
    items, _ = parse(row)
    assert reasons(items) == ["no_boxes"]


# --- options for the pipeline and evaluation ---------------------------------------------------


def test_require_dimensions_false_keeps_rows_without_size_and_does_not_clip() -> None:
    row = model_run_row(width=None, height=None, objects=[box_object("a", -5, -5, 20, 20)])
    sample, stats = only_sample(row, require_dimensions=False)
    assert (sample.width, sample.height) == (None, None)
    assert sample.boxes == (Box("a", -5, -5, 15, 15),)
    assert stats.warnings == {}


def test_require_dimensions_false_still_drops_empty_boxes() -> None:
    row = model_run_row(width=None, objects=[box_object("a", 0, 0, 0, 5), box_object("b")])
    sample, stats = only_sample(row, require_dimensions=False)
    assert [b.label for b in sample.boxes] == ["b"]
    assert sample.width is None and sample.height is None  # height alone is not a size
    assert stats.warnings == {"box_degenerate": 1}


def test_require_boxes_false_keeps_rows_without_boxes() -> None:
    sample, stats = only_sample(model_run_row(objects=[], split="test"), require_boxes=False)
    assert sample.boxes == ()
    assert stats.rows_written == 1 and stats.classes == {}


# --- statistics ---------------------------------------------------------------------------------


def test_classes_count_images_per_split() -> None:
    rows = [
        model_run_row("a", objects=[box_object("car"), box_object("car"), box_object("bus")]),
        model_run_row("b", objects=[box_object("car")], split="test"),
        model_run_row("c", objects=[box_object("car")]),
    ]
    _, stats = parse(*rows)
    assert stats.classes == {"bus": {"training": 1}, "car": {"training": 2, "test": 1}}
    assert stats.boxes_written == 5


def test_examples_keep_the_first_20_per_code() -> None:
    rows = [b"{bad %d" % i for i in range(EXAMPLES_PER_CODE + 5)]
    _, stats = parse(*rows)
    assert stats.rejected == {"malformed_json": 25}
    assert [e["line"] for e in stats.examples["malformed_json"]] == list(range(1, 21))


def test_report_json_shape() -> None:
    _, stats = parse(model_run_row("a"), b"{", model_run_row("b", objects=[box_object(left=-1)]))
    report = stats.to_json()
    assert report == {
        "rows_read": 3,
        "rows_written": 2,
        "rows_with_boxes": 2,
        "boxes_written": 2,
        "rejected": {"malformed_json": 1},
        "warnings": {"box_clipped": 1},
        "examples": {
            "box_clipped": [report["examples"]["box_clipped"][0]],
            "malformed_json": [report["examples"]["malformed_json"][0]],
        },
        "classes": {"car": {"training": 2}},
    }
    assert report["examples"]["box_clipped"][0]["line"] == 3
    assert report["examples"]["box_clipped"][0]["data_row_id"] == "b"
    orjson.dumps(report)


@pytest.mark.parametrize(
    ("ltwh", "expected", "warning"),
    [
        # under 1% is kept when small boxes are wanted (ground truth for evaluation)
        ((100, 100, 9.99, 50), (100, 100, 109.99, 150), None),
        ((100.0, 100.0, 2.0, 1.0), (100, 100, 102, 101), None),
        # clipping and degenerate boxes still follow the usual rules
        ((-95, 0, 100, 100), (0, 0, 5, 100), "box_clipped"),
        ((10, 10, 0, 10), None, "box_degenerate"),
    ],
)
def test_small_boxes_are_kept_when_asked(
    ltwh: tuple[float, float, float, float],
    expected: tuple[float, float, float, float] | None,
    warning: str | None,
) -> None:
    anchor = box_object("anchor", 500, 250, 100, 100)
    row = model_run_row(objects=[box_object("car", *ltwh), anchor], width=1000, height=500)
    sample, stats = only_sample(row, vertex_limits=False)
    kept = [(b.x0, b.y0, b.x1, b.y1) for b in sample.boxes if b.label == "car"]
    assert kept == ([expected] if expected else [])
    assert stats.warnings == ({warning: 1} if warning else {})


@pytest.mark.parametrize(
    ("labels", "unlabelled"),
    [
        ([], True),  # "To label": no label yet
        (None, True),  # no labels key at all
        ([{"id": "l", "annotations": {"objects": []}}], False),  # labelled: nothing in it
        ([{"id": "l"}], False),  # a label without annotations is still a label
    ],
)
@pytest.mark.parametrize("builder", [model_run_row, project_row])
def test_ground_truth_tells_a_row_with_no_label_from_a_label_with_no_objects(
    builder: Any, labels: Any, unlabelled: bool
) -> None:
    row = _unlabelled(builder("dr-9"), labels)
    options = ExportOptions.ground_truth()
    items = list(parse_lines(lines(row), options))
    [item] = items
    if unlabelled:
        assert isinstance(item, Rejection) and item.reason == "unlabelled_row"
        assert item.data_row_id == "dr-9" and "no label" in item.detail
        row_as_sample = item.extra["row"]
        assert isinstance(row_as_sample, Sample) and row_as_sample.data_row_id == "dr-9"
        assert row_as_sample.image_uri == row["data_row"]["row_data"]
    else:
        assert isinstance(item, Sample) and item.boxes == ()
    # vmt convert's rules are unchanged: no box is no box, whatever the reason
    [converted] = list(parse_lines(lines(row), ExportOptions(unassigned="training")))
    assert isinstance(converted, Rejection) and converted.reason == "no_boxes"
