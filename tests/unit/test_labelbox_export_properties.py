"""Property tests: no input crashes the parser or the converter, and every row is accounted for."""

from __future__ import annotations

import io
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders.labelbox_rows import box_object, model_run_row, project_row, v1_row
from vmt.domain import Rejection, Sample
from vmt.formats.export_boxes import read_box, read_boxes
from vmt.formats.export_options import ExportOptions
from vmt.formats.json_records import ndjson_records
from vmt.formats.labelbox_export import ConversionStats, parse_lines
from vmt.formats.labelbox_to_vertex import convert_export
from vmt.reasons import BOX_WARNINGS, EXPORT_ROW_CHECKS

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats()  # NaN and Infinity: json.dumps writes them as literals, which are read
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
numbers = (
    st.integers(-2000, 2000)
    | st.floats(-2000, 2000, allow_nan=False)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers()
    | st.sampled_from([float("nan"), float("inf"), float("-inf")])
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly well-typed values, sometimes anything at all."""
    return st.integers(0, 9).flatmap(lambda k: strategy if k < 8 else json_values)


geometry = st.fixed_dictionaries(
    {
        "left": maybe(numbers),
        "top": maybe(numbers),
        "width": maybe(numbers),
        "height": maybe(numbers),
    }
)
plausible = st.floats(-100, 1100, allow_nan=False) | st.integers(-100, 1100)
plausible_geometry = st.fixed_dictionaries(
    {"left": plausible, "top": plausible, "width": plausible, "height": plausible}
)
v2_object = st.fixed_dictionaries(
    {"name": maybe(st.text(max_size=4)), "bounding_box": maybe(plausible_geometry | geometry)},
    optional={"value": maybe(st.text(max_size=4)), "annotation_kind": json_values},
)
v1_object = st.fixed_dictionaries(
    {"bbox": maybe(geometry)},
    optional={"title": maybe(st.text(max_size=4)), "value": maybe(st.text(max_size=4))},
)
ids = maybe(st.sampled_from(["a", "b", "c", "d", "é"]))
splits = maybe(st.sampled_from(["training", "TRAIN", "val", "test", "UNASSIGNED", ""]))
mimes = maybe(st.sampled_from(["image/jpeg", "image/png", "video/mp4", "IMAGE/GIF"]))
row_data = maybe(st.sampled_from(["gs://b/x.jpg", "https://h/x.png", "/p/x"]))
sizes = maybe(
    st.integers(-5, 1200)
    | st.floats(0, 1200)
    | st.integers(1, 1200).map(float)  # integral floats, as pandas writes them
    | st.sampled_from([float("nan"), float("inf")])
)
common = {"mime_type": mimes, "row_data": row_data, "width": sizes, "height": sizes}

rows = (
    st.builds(
        model_run_row,
        ids,
        objects=maybe(st.lists(v2_object | json_values, max_size=6)),
        split=splits,
        run_id=st.sampled_from(["run-1", "run-2"]),
        **common,
    )
    | st.builds(project_row, ids, objects=maybe(st.lists(v2_object, max_size=6)), **common)
    | st.builds(
        v1_row,
        ids,
        objects=maybe(st.lists(v1_object | json_values, max_size=6)),
        split=splits,
        **common,
    )
)


def _still_to_label(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with no label in its runs or projects (a v1 row is left as it is)."""
    for model in (row.get("experiments") or {}).values():
        for run in model["runs"].values():
            run["labels"] = []
    for project in (row.get("projects") or {}).values():
        project["labels"] = []
    return row


row_lines = (rows | rows.map(_still_to_label)).map(
    lambda r: json.dumps(r, ensure_ascii=False).encode("utf-8", "surrogatepass")
)
lines = st.lists(
    st.one_of(
        st.binary(max_size=40),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.sampled_from([b"", b"\n", b"  \r\n"]),
        row_lines,
        row_lines,
        row_lines,
        row_lines,
    ),
    max_size=12,
)
options = st.builds(
    ExportOptions,
    model_run_id=st.one_of(st.none(), st.none(), st.sampled_from(["run-1", "run-2", "project-1"])),
    unassigned=st.sampled_from(["skip", "training", "validation", "test", "auto"]),
    require_dimensions=st.booleans(),
    require_boxes=st.booleans(),
    keep_unassigned=st.booleans(),
    require_label=st.booleans(),
)
_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(lines=lines, options=options)
def test_parser_never_crashes_and_accounts_for_every_row(
    lines: list[bytes], options: ExportOptions
) -> None:
    stats = ConversionStats()
    items = list(parse_lines(lines, options, stats))
    non_blank = [i + 1 for i, line in enumerate(lines) if line.strip()]
    assert [item.line for item in items] == non_blank
    assert stats.rows_read == len(non_blank) == stats.rows_written + sum(stats.rejected.values())
    assert set(stats.rejected) <= set(EXPORT_ROW_CHECKS) - {"not_in_gcs"}
    assert set(stats.warnings) <= set(BOX_WARNINGS)
    samples = [item for item in items if isinstance(item, Sample)]
    assert stats.rows_written == len(samples)
    assert stats.boxes_written == sum(len(s.boxes) for s in samples)
    assert len({s.data_row_id for s in samples}) == len(samples)
    for sample in samples:
        if options.require_boxes:
            assert sample.boxes
        for box in sample.boxes:
            assert box.label and isinstance(box.label, str)
            assert box.x1 > box.x0 and box.y1 > box.y0
            if sample.width is not None and sample.height is not None:
                assert 0 <= box.x0 < box.x1 <= sample.width
                assert 0 <= box.y0 < box.y1 <= sample.height
                assert (box.x1 - box.x0) * 100 >= sample.width
                assert (box.y1 - box.y0) * 100 >= sample.height
    assert all(isinstance(item, Rejection) for item in items if not isinstance(item, Sample))
    for item in items:
        if isinstance(item, Rejection) and item.reason == "unlabelled_row":
            assert options.require_label
            row = item.extra["row"]
            assert isinstance(row, Sample) and row.data_row_id == item.data_row_id
            assert row.boxes == ()


@_settings
@given(
    lines=lines,
    prefix=st.none() | st.just("gs://stage/"),
    unassigned=st.sampled_from(["skip", "auto"]),
)
def test_converter_never_crashes_and_writes_valid_lines(
    lines: list[bytes], prefix: str | None, unassigned: str
) -> None:
    out = io.BytesIO()
    stats = convert_export(
        ndjson_records(lines), out, image_uri_prefix=prefix, unassigned=unassigned
    )
    assert stats.rows_read == stats.rows_written + sum(stats.rejected.values())
    written = out.getvalue().splitlines()
    assert len(written) == stats.rows_written
    for line in written:
        record = json.loads(line)
        assert record["imageGcsUri"].startswith("gs://")
        assert record["dataItemResourceLabels"]["aiplatform.googleapis.com/ml_use"] in {
            "training",
            "validation",
            "test",
        }
        for box in record["boundingBoxAnnotations"]:
            assert 0 <= box["xMin"] < box["xMax"] <= 1 and 0 <= box["yMin"] < box["yMax"] <= 1


sides = st.sampled_from([1, 7, 100, 333, 640, 1000]) | st.integers(1, 5000)
edgy = st.one_of(
    st.floats(-2, 2, allow_nan=False),
    st.floats(-50, 1050, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1.0, 10.0, 5.0, 1000.0, 500.0, 99.99, 100.0, 4999.5]),
    st.floats(allow_nan=False, allow_infinity=False),
)


@st.composite
def near_edges(draw: st.DrawFn) -> tuple[tuple[float, float, float, float], int, int]:
    """Boxes whose sides and corners sit within a pixel of the image border or of 1%."""
    width, height = draw(sides), draw(sides)
    jitter = st.floats(-1.5, 1.5, allow_nan=False) | st.just(0.0)

    def origin(side: int) -> float:
        return draw(st.sampled_from([0.0, side / 2, side / 100])) + draw(jitter)

    def extent(origin: float, side: int) -> float:
        anchor = draw(st.sampled_from([side - origin, side / 100, side / 2, 0.0]))
        return anchor + draw(jitter)

    left, top = origin(width), origin(height)
    return (left, top, extent(left, width), extent(top, height)), width, height


@_settings
@given(
    case=st.tuples(st.tuples(edgy, edgy, edgy, edgy), sides, sides) | near_edges(),
    vertex_limits=st.booleans(),
)
def test_box_fast_path_agrees_with_the_reference_rules(
    case: tuple[tuple[float, float, float, float], int, int], vertex_limits: bool
) -> None:
    geometry, width, height = case
    obj = box_object("car", *geometry)
    fast_stats, slow_stats = ConversionStats(), ConversionStats()
    fast = read_boxes(
        [obj],
        "bounding_box",
        "name",
        width,
        height,
        1,
        "id",
        fast_stats,
        vertex_limits=vertex_limits,
    )
    slow = read_box(
        obj, "bounding_box", "name", width, height, 1, "id", slow_stats, vertex_limits=vertex_limits
    )
    assert fast == ([slow] if slow is not None else [])
    assert fast_stats.warnings == slow_stats.warnings
