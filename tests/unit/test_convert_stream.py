"""The convert fast path (numba kernel) against the reference path, byte for byte.

Every test runs both `convert_export` (orjson + Python, the reference of every rule) and
`convert_stream` on the same bytes and requires the same output file and the same report; the
tests also check that the kernel really decided the usual rows itself (``on_fallback``), so the
agreement is not the reference agreeing with itself.
"""

from __future__ import annotations

import io
import json
import random
import tempfile
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders.labelbox_rows import box_object, model_run_row, polygon_object
from tests.unit.test_labelbox_export_properties import lines as arbitrary_lines
from vmt.domain import Split
from vmt.formats.conversion_stats import EXAMPLES_PER_CODE
from vmt.formats.convert_stream import HashedIds, convert_stream
from vmt.formats.labelbox_to_vertex import convert_export

REPEAT = EXAMPLES_PER_CODE + 5
"""Each odd row this many times: the first ones go to the reference (their examples), the
rest are counted by the kernel."""


def both(data: bytes, *, chunk_bytes: int = 1 << 16, **options: Any) -> list[int]:
    """Convert ``data`` both ways; assert identical output and report; the fallback lines."""
    expected = io.BytesIO()
    reference = convert_export(io.BytesIO(data), expected, **options)
    with tempfile.TemporaryFile() as file:  # a regular file is mapped, a stream is read
        file.write(data)
        file.seek(0)
        runs = []
        for source in (io.BytesIO(data), file):
            got = io.BytesIO()
            fallbacks: list[int] = []
            fast = convert_stream(
                source, got, on_fallback=fallbacks.append, chunk_bytes=chunk_bytes, **options
            )
            assert got.getvalue() == expected.getvalue()
            assert fast.to_json() == reference.to_json()
            for split in (Split.TRAINING, Split.VALIDATION, Split.TEST):
                assert fast.boxes_per_class(split) == reference.boxes_per_class(split)
            runs.append(fallbacks)
    assert runs[0] == runs[1]
    return runs[0]


def line(row: Any) -> bytes:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def rows_of(make: Any, count: int = REPEAT) -> bytes:
    return b"".join(line(make(f"dr-{k}")) for k in range(count))


def test_the_usual_rows_are_decided_by_the_kernel() -> None:
    data = rows_of(lambda i: model_run_row(i, objects=[box_object("car"), box_object("bus")]), 200)
    assert both(data) == []
    assert both(data, image_uri_prefix="gs://stage/run/") == []


UNUSUAL: dict[str, Any] = {
    "clipped": lambda i: model_run_row(i, objects=[box_object(left=-5.0, width=50.0)]),
    "degenerate": lambda i: model_run_row(i, objects=[box_object(left=2000.0), box_object()]),
    "too_small": lambda i: model_run_row(i, objects=[box_object(width=9.99), box_object()]),
    "exactly_1pc": lambda i: model_run_row(i, objects=[box_object(width=10.0, height=5.0)]),
    "int_geometry": lambda i: model_run_row(i, objects=[box_object(left=-3, top=0, width=7)]),
    "negative_zero": lambda i: model_run_row(i, objects=[box_object(left=-0.0, top=-0.0)]),
    "polygon": lambda i: model_run_row(i, objects=[polygon_object(), box_object()]),
    "null_box": lambda i: model_run_row(i, objects=[{"name": "x", "bounding_box": None}]),
    "box_string": lambda i: model_run_row(i, objects=[{"name": "x", "bounding_box": "1,2"}]),
    "box_missing_key": lambda i: model_run_row(
        i, objects=[{"name": "x", "bounding_box": {"left": 1, "top": 1, "width": 5}}]
    ),
    "box_bool": lambda i: model_run_row(i, objects=[box_object(left=True)]),
    "name_from_value": lambda i: model_run_row(
        i, objects=[{"value": "cat", "bounding_box": box_object()["bounding_box"]}]
    ),
    "empty_name": lambda i: model_run_row(i, objects=[box_object(name="")]),
    "no_boxes": lambda i: model_run_row(i, objects=[]),
    "objects_not_list": lambda i: model_run_row(i, objects={"a": 1}),  # type: ignore[arg-type]
    "utf8_name": lambda i: model_run_row(i, objects=[box_object("vélo 自転車 🚲")]),
    "escaped_name": lambda i: model_run_row(i, objects=[box_object('say "hi"\n')]),
    "not_image": lambda i: model_run_row(i, mime_type="video/mp4"),
    "mime_upper": lambda i: model_run_row(i, mime_type="IMAGE/PNG"),
    "mime_short": lambda i: model_run_row(i, mime_type="ima"),
    "mime_number": lambda i: model_run_row(i, mime_type=5),
    "mime_unknown_image": lambda i: model_run_row(i, mime_type="image/heic"),
    "no_mime": lambda i: model_run_row(i, mime_type=None),
    "no_dimensions": lambda i: model_run_row(i, width=None),
    "zero_width": lambda i: model_run_row(i, width=0),
    "float_width": lambda i: model_run_row(i, width=1000.0),
    "string_height": lambda i: model_run_row(i, height="500"),
    "split_spaced": lambda i: model_run_row(i, split=" Train "),
    "split_val": lambda i: model_run_row(i, split="VAL"),
    "split_test": lambda i: model_run_row(i, split="test"),
    "unassigned": lambda i: model_run_row(i, split="UNASSIGNED"),
    "split_number": lambda i: model_run_row(i, split=3),
    "no_split": lambda i: model_run_row(i, split=None),
    "https": lambda i: model_run_row(i, row_data=f"https://cdn.example.com/{i}.png"),
    "no_row_data": lambda i: model_run_row(i, row_data=None),
    "two_runs": lambda i: model_run_row(i, extra_runs={"run-2": {"labels": []}}),
    "run_not_object": lambda i: {**model_run_row(i), "experiments": {"m": {"runs": {"r": 1}}}},
    "project_row": lambda i: {
        "data_row": {"id": i, "row_data": "gs://b/x.jpg"},
        "media_attributes": {"width": 100, "height": 100, "mime_type": "image/jpeg"},
        "projects": {"p": {"labels": [{"annotations": {"objects": [box_object()]}}]}},
    },
    "v1_row": lambda i: {
        "DataRow ID": i,
        "Labeled Data": "gs://b/x.jpg",
        "Data Split": "training",
        "Media Attributes": {"width": 100, "height": 100, "mimeType": "image/jpeg"},
        "Label": {"objects": [{"title": "car", "bbox": {"left": 1, "top": 1, "width": 50}}]},
    },
    "no_id": lambda i: {**model_run_row(i), "data_row": {"row_data": "gs://b/x.jpg"}},
    "data_row_null": lambda i: {**model_run_row(i), "data_row": None},
    "not_object": lambda i: [1, 2, 3],
    "extra_labels": lambda i: model_run_row(i, extra_labels=[[box_object("ignored")]]),
    "labels_first_not_object": lambda i: {
        **model_run_row(i),
        "experiments": {"m": {"runs": {"r": {"split": "training", "labels": [5, {}]}}}},
    },
}


REFERENCE_ONLY = {
    "name_from_value", "empty_name", "escaped_name", "float_width", "two_runs", "run_not_object",
    "project_row", "v1_row", "no_id", "data_row_null", "not_object",
}  # fmt: skip
"""Rows the kernel never decides (each one goes to the reference)."""
KERNEL_ONLY = {
    "exactly_1pc", "negative_zero", "utf8_name", "mime_upper", "split_spaced", "split_val",
    "split_test", "extra_labels",
}  # fmt: skip
"""Rows the kernel decides from the first one (nothing to report)."""


def expected_fallbacks(name: str, prefix: str | None) -> int:
    if prefix is None:
        if name in {"mime_number", "mime_unknown_image", "no_mime"}:
            return 0
    elif name in {"mime_number", "mime_unknown_image", "no_mime"}:
        return REPEAT  # the extension would come from row_data's path
    elif name in {"https", "no_row_data"}:
        return 0
    if name in REFERENCE_ONLY:
        return REPEAT
    return 0 if name in KERNEL_ONLY else EXAMPLES_PER_CODE


@pytest.mark.parametrize("prefix", [None, "gs://stage/run-1/"])
@pytest.mark.parametrize("name", sorted(UNUSUAL))
def test_unusual_rows_agree(name: str, prefix: str | None) -> None:
    """The first rows with a rejection or warning go to the reference (it writes the report's
    examples); once a code has its examples, the kernel counts the rest itself."""
    data = rows_of(UNUSUAL[name])
    fallbacks = both(data, image_uri_prefix=prefix)
    assert len(fallbacks) == expected_fallbacks(name, prefix)


def test_all_unusual_rows_mixed_with_usual_ones_agree() -> None:
    rng = random.Random(7)
    makers = list(UNUSUAL.values())
    rows = []
    for _ in range(3000):
        make = rng.choice(makers) if rng.random() < 0.5 else model_run_row
        rows.append(line(make(f"dr-{rng.randrange(2500)}")))  # duplicates too
    data = b"".join(rows)
    for options in (
        {},
        {"image_uri_prefix": "gs://stage/"},
        {"unassigned": "validation"},
        {"unassigned": "auto"},
        {"model_run_id": "run-1"},
        {"model_run_id": "run-2"},
    ):
        fallbacks = both(data, **options)
        assert len(fallbacks) < len(rows)


def edited(old: bytes, new: bytes) -> bytes:
    """The usual row with ``old`` replaced by ``new`` in its text."""
    text = line(model_run_row("x"))
    assert old in text
    return text.replace(old, new)


RAW_LINES = {
    "blank_and_crlf": b'\n   \r\n{"a":1}\r\n\x0b\n',
    "escape_in_skipped_string": line(
        {**model_run_row("x"), "note": 'tab\tquote" slash/ \u00e9 \u2028'}
    ),
    "escaped_key": edited(b'"media_attributes"', b'"media_\\u0061ttributes"'),
    "escaped_id": edited(b'"id":"x"', b'"id":"\\u0078"'),
    "lone_surrogate": edited(b'"name":"model"', b'"name":"\\ud800"'),
    "surrogate_pair": edited(b'"name":"model"', b'"name":"\\ud83d\\ude97"'),
    "invalid_utf8": edited(b'"name":"model"', b'"name":"\xff\xfe"'),
    "overlong_utf8": edited(b'"name":"model"', b'"name":"\xc0\xaf"'),
    "control_char": edited(b'"name":"model"', b'"name":"a\x01b"'),
    "exponent": edited(b'"top":20.0', b'"top":2e1'),
    "huge_exponent": edited(b'"top":20.0', b'"top":1e400'),
    "big_int_skipped": line({**model_run_row("x"), "n": 123456789012345678901234567890}),
    "big_int_geometry": edited(b'"top":20.0', b'"top":20000000000000000'),
    "long_float": edited(b'"top":20.0', b'"top":20.00000000000000000001'),
    "leading_zero": edited(b'"top":20.0', b'"top":020.0'),
    "bare_dot": edited(b'"top":20.0', b'"top":20.'),
    "nan": edited(b'"top":20.0', b'"top":NaN'),
    "duplicate_key": edited(b'"top":20.0', b'"top":20.0,"top":1.0'),
    "duplicate_split": edited(b'"split":"training"', b'"split":"training","split":"test"'),
    "duplicate_skipped_key": edited(b'{"data_row"', b'{"z":1,"z":2,"data_row"'),
    "trailing_comma": edited(b'"predictions":[]', b'"predictions":[1,]'),
    "trailing_garbage": line(model_run_row("x")).rstrip(b"\n") + b" {}\n",
    "whitespace": orjson.dumps(model_run_row("x"), option=orjson.OPT_INDENT_2).replace(b"\n", b" ")
    + b"\n",
    "bom": b"\xef\xbb\xbf" + line(model_run_row("x")),
    "deep": line({**model_run_row("x"), "deep": json.loads("[" * 100 + "]" * 100)}),
    "truncated": line(model_run_row("x"))[:-20] + b"\n",
    "no_final_newline": line(model_run_row("x")).rstrip(b"\n"),
    "literals": line({**model_run_row("x"), "t": True, "f": False, "n": None}),
    "bad_literal": edited(b'"predictions":[]', b'"predictions":nul'),
    "empty_object_root": b"{}\n",
    "many_boxes": line(model_run_row("x", objects=[box_object()] * 501)),
    "500_boxes": line(model_run_row("x", objects=[box_object()] * 500)),
}


@pytest.mark.parametrize("name", sorted(RAW_LINES))
def test_raw_lines_agree(name: str) -> None:
    raw = RAW_LINES[name]
    usual = line(model_run_row("usual"))
    both(usual + raw + line(model_run_row("after")))
    # Past the first examples, the kernel counts what it can decide itself.
    data = b"".join(raw.replace(b'"x"', f'"x{k}"'.encode()) for k in range(REPEAT))
    if not data.endswith(b"\n"):
        data = b"\n".join(raw.replace(b'"x"', f'"x{k}"'.encode()) for k in range(REPEAT))
    both(data)


def test_lines_longer_than_a_chunk_and_every_chunk_boundary() -> None:
    rng = random.Random(3)
    makers = list(UNUSUAL.values())
    data = b"".join(line(rng.choice(makers)(f"dr-{k}")) for k in range(60))
    data += b"".join(RAW_LINES.values())
    for chunk in (7, 64, 333, 4096, 70_000):  # windows of a mapped file start at 64 KiB
        both(data, chunk_bytes=chunk)
        both(data.rstrip(b"\n"), chunk_bytes=chunk)


def test_many_classes_grow_the_class_table() -> None:
    data = b"".join(
        line(model_run_row(f"dr-{k}", objects=[box_object(f"class {k % 3000}")]))
        for k in range(6000)
    )
    assert both(data) == []


def test_ids_seen_by_either_path_are_duplicates_for_both() -> None:
    first_by_reference = line(model_run_row("a", objects=[box_object(left=-5.0)]))
    first_by_kernel = line(model_run_row("b"))
    data = (
        first_by_reference
        + first_by_kernel
        + line(model_run_row("a"))
        + line(model_run_row("b", objects=[box_object(left=-5.0)]))
    )
    both(data)


def test_hashed_ids_grow_and_remember() -> None:
    ctx = np.zeros(16, dtype=np.int64)
    ids = HashedIds(ctx, slots=4)
    keys = [f"id-{k}" for k in range(5000)] + ["", "é", "自"]
    assert all(ids.add(key) for key in keys)
    assert not any(ids.add(key) for key in keys)
    assert ids.keys.shape[0] >= 2 * len(keys)


def test_orjson_formats_numpy_floats_as_python_floats() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.random(20_000),
            rng.random(2_000) * 1e-7,
            np.frombuffer(rng.bytes(8 * 20_000), dtype=np.float64),
            np.array([0.0, -0.0, 1.0, 0.1, 1e16, 1e-5, 5e-324, 1.7976931348623157e308]),
        ]
    )
    values = values[np.isfinite(values)]
    assert orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY) == orjson.dumps(values.tolist())


def test_random_geometry_and_number_forms_agree() -> None:
    rng = random.Random(11)

    def number(value: float) -> Any:
        form = rng.randrange(5)
        if form == 0:
            return round(value)
        if form == 1:
            return round(value, rng.randrange(0, 6))
        if form == 2:
            return -0.0 if value < 1 else value
        return value

    def short(value: Any) -> bool:
        """What the kernel reads itself: at most 15 digits, no exponent."""
        text = repr(value)
        return "e" not in text and len(text.lstrip("-").replace(".", "")) <= 15

    rows = []
    long_rows = 0
    for k in range(4000):
        width, height = rng.choice([(1920, 1080), (640, 480), (7, 3), (100, 100)])
        objects = [
            box_object(
                rng.choice(["a", "b", "c"]),
                left=number(rng.uniform(-0.1, 1.05) * width),
                top=number(rng.uniform(-0.1, 1.05) * height),
                width=number(rng.uniform(-0.01, 0.5) * width),
                height=number(rng.uniform(-0.01, 0.5) * height),
            )
            for _ in range(rng.randrange(0, 8))
        ]
        numbers = [v for o in objects for v in o["bounding_box"].values()]
        long_rows += not all(short(v) for v in numbers)
        rows.append(line(model_run_row(f"dr-{k}", objects=objects, width=width, height=height)))
    fallbacks = both(b"".join(rows))
    assert 1000 < long_rows < 3500
    assert len(fallbacks) <= long_rows + 6 * EXAMPLES_PER_CODE


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=arbitrary_lines,
    repeat=st.integers(1, 3),
    prefix=st.none() | st.just("gs://stage/"),
    unassigned=st.sampled_from(["skip", "training", "auto"]),
    model_run_id=st.none() | st.sampled_from(["run-1", "run-2"]),
)
def test_arbitrary_lines_agree(
    lines: list[bytes],
    repeat: int,
    prefix: str | None,
    unassigned: str,
    model_run_id: str | None,
) -> None:
    data = b"\n".join(line.replace(b"\n", b" ") for line in lines * repeat)
    both(data, image_uri_prefix=prefix, unassigned=unassigned, model_run_id=model_run_id)
