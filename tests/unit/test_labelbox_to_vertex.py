"""The convert core: parser + URI check + import lines, streaming to a binary stream."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest

from tests.builders.labelbox_rows import box_object, lines, model_run_row, v1_row
from vmt.domain import Sample
from vmt.formats.export_options import ExportOptions
from vmt.formats.json_records import ndjson_records
from vmt.formats.labelbox_export import ConversionStats, parse_lines
from vmt.formats.labelbox_to_vertex import convert_export
from vmt.formats.vertex import image_uri, import_line


def convert(*rows: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], ConversionStats]:
    out = io.BytesIO()
    stats = convert_export(ndjson_records(lines(*rows)), out, **kwargs)
    assert stats.rows_read == stats.rows_written + stats.rows_rejected
    written = out.getvalue().splitlines(keepends=True)
    assert len(written) == stats.rows_written and all(w.endswith(b"\n") for w in written)
    return [orjson.loads(line) for line in written], stats


def test_rows_in_input_order_with_gs_uris_as_is() -> None:
    rows = [model_run_row(f"r{i}", row_data=f"gs://b/{i}.jpg") for i in range(5)]
    written, _ = convert(*rows)
    assert [w["imageGcsUri"] for w in written] == [f"gs://b/{i}.jpg" for i in range(5)]


@pytest.mark.parametrize(
    ("row_data", "prefix", "expected"),
    [
        ("https://cdn/x.jpg", None, "not_in_gcs"),
        (None, None, "not_in_gcs"),
        ("/local/x.jpg", None, "not_in_gcs"),
        ("https://cdn/x.png", "gs://stage/", "gs://stage/dr-1.jpg"),
        ("gs://b/x.png", None, "gs://b/x.png"),
    ],
)
def test_uri_rule(row_data: str | None, prefix: str | None, expected: str) -> None:
    written, stats = convert(model_run_row(row_data=row_data), image_uri_prefix=prefix)
    got = written[0]["imageGcsUri"] if written else next(iter(stats.rejected))
    assert got == expected


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (model_run_row(row_data="https://x", split=None), "unassigned_split"),
        (model_run_row(row_data="https://x", objects=[]), "no_boxes"),
        (model_run_row(row_data="https://x", objects=[box_object()] * 501), "too_many_boxes"),
        (model_run_row(row_data="https://x", width=None), "missing_dimensions"),
    ],
)
def test_uri_is_the_last_check(row: dict[str, Any], expected: str) -> None:
    _, stats = convert(row)
    assert stats.rejected == {expected: 1}


def test_not_in_gcs_rows_still_claim_their_id() -> None:
    _, stats = convert(model_run_row("a", row_data="https://x"), model_run_row("a"))
    assert stats.rejected == {"not_in_gcs": 1, "duplicate_row": 1}
    assert stats.examples["not_in_gcs"][0]["line"] == 1


def test_output_equals_import_line_of_the_parsed_samples() -> None:
    """The convert core and the public API (Sample + import_line) agree byte for byte."""
    rows = [
        model_run_row(
            "a", objects=[box_object("car", -3.5, 2, 100.25, 50), box_object("é", 1, 1, 17, 9)]
        ),
        v1_row("b", split="test"),
        model_run_row("c", split="val", objects=[box_object("x", 0, 0, 1000, 500)]),
        model_run_row("d", objects=[box_object("tiny", 0, 0, 1, 1)]),
    ]
    out = io.BytesIO()
    convert_export(ndjson_records(lines(*rows)), out, image_uri_prefix="gs://s/")
    expected = b"".join(
        import_line(s, image_uri(s.data_row_id, s.image_uri, s.mime_type, prefix="gs://s/") or "")
        for s in parse_lines(lines(*rows), ExportOptions())
        if isinstance(s, Sample)
    )
    assert out.getvalue() == expected
    assert out.getvalue().count(b"\n") == 3


def test_options_reach_the_parser() -> None:
    two_runs = model_run_row(
        extra_runs={
            "run-2": {"split": "test", "labels": [{"annotations": {"objects": [box_object("b")]}}]}
        }
    )
    written, _ = convert(two_runs, model_run_id="run-2")
    assert written[0]["boundingBoxAnnotations"][0]["displayName"] == "b"
    written, _ = convert(model_run_row(split=None), unassigned="validation")
    assert written[0]["dataItemResourceLabels"] == {
        "aiplatform.googleapis.com/ml_use": "validation"
    }
