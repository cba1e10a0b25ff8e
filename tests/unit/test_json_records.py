"""`vmt.formats.json_records`: every whole-file shape read as the same records, line numbers
where each record starts, one clear refusal for files that are not JSON."""

from __future__ import annotations

import gzip
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmt.errors import InputError
from vmt.formats.json_records import Malformed, Shape, open_records, read_document, read_records

A, B, C = {"id": "a", "n": [1, {"x": "}]"}]}, {"id": "b", "s": "[{,"}, {"id": "c"}


def values(path: Path) -> list[tuple[int, Any]]:
    return list(read_records(path))


SHAPES: list[tuple[str, bytes, Shape, list[tuple[int, Any]]]] = [
    # (case, file bytes, shape, records as (line, value))
    ("ndjson", b'{"id": "a"}\n{"id": "b"}\n', Shape.NDJSON, [(1, {"id": "a"}), (2, {"id": "b"})]),
    ("ndjson, no final newline", b'{"id": "a"}\n{"id": "b"}', Shape.NDJSON,
     [(1, {"id": "a"}), (2, {"id": "b"})]),
    ("ndjson, CRLF", b'{"id": "a"}\r\n\r\n{"id": "b"}\r\n', Shape.NDJSON,
     [(1, {"id": "a"}), (3, {"id": "b"})]),
    ("ndjson, BOM", b'\xef\xbb\xbf{"id": "a"}\n{"id": "b"}\n', Shape.NDJSON,
     [(1, {"id": "a"}), (2, {"id": "b"})]),
    ("ndjson, broken first line", b'{"id": \n{"id": "b"}\n', Shape.NDJSON,
     [(1, "malformed"), (2, {"id": "b"})]),
    ("array, one per line, trailing commas",
     b"[\n" + orjson.dumps(A) + b",\n" + orjson.dumps(B) + b",\n" + orjson.dumps(C) + b"\n]\n",
     Shape.ARRAY, [(2, A), (3, B), (4, C)]),
    ("array, one per line, CRLF and BOM",
     b"\xef\xbb\xbf[\r\n" + orjson.dumps(A) + b",\r\n" + orjson.dumps(B) + b"\r\n]\r\n",
     Shape.ARRAY, [(2, A), (3, B)]),
    ("array, brackets on the element lines",
     b"[" + orjson.dumps(A) + b",\n" + orjson.dumps(B) + b"]", Shape.ARRAY, [(1, A), (2, B)]),
    ("array, single line", orjson.dumps([A, B, C]), Shape.ARRAY, [(1, A), (1, B), (1, C)]),
    ("array, pretty-printed (2)", orjson.dumps([A, B], option=orjson.OPT_INDENT_2), Shape.ARRAY,
     [(2, A), (11, B)]),
    ("array, pretty-printed with tabs, commas first",
     b'[\n\t{\n\t\t"id": "a"\n\t}\n\t, {"id": "b"}\n]', Shape.ARRAY,
     [(2, {"id": "a"}), (5, {"id": "b"})]),
    ("array, several elements on a line", b"[\n" + orjson.dumps(A) + b", " + orjson.dumps(B)
     + b",\n" + orjson.dumps(C) + b"\n]", Shape.ARRAY, [(2, A), (2, B), (3, C)]),
    ("array, empty", b"[]", Shape.ARRAY, []),
    ("array, empty, pretty", b"[\n]\n", Shape.ARRAY, []),
    ("array, a broken element", b'[\n{"id": "a"},\n{"id": ,},\n{"id": "c"}\n]', Shape.ARRAY,
     [(2, {"id": "a"}), (3, "malformed"), (4, {"id": "c"})]),
    ("array, not closed", b'[\n{"id": "a"},\n{"id": "b"},\n', Shape.ARRAY,
     [(2, {"id": "a"}), (3, {"id": "b"}), (3, "malformed")]),
    ("array, text after it", b'[{"id": "a"}]\n{"id": "b"}\n', Shape.ARRAY,
     [(1, {"id": "a"}), (2, "malformed")]),
    ("pretty-printed objects", orjson.dumps(A, option=orjson.OPT_INDENT_2) + b"\n"
     + orjson.dumps(B, option=orjson.OPT_INDENT_2), Shape.OBJECTS, [(1, A), (10, B)]),
    ("first key on the first line", b'{"images": [{"id": 1}],\n"annotations": [\n{"id": 2},\n'
     b'{"id": 3}\n]}\n', Shape.NDJSON, [(1, {"images": [{"id": 1}], "annotations": [{"id": 2},
                                                                             {"id": 3}]})]),
    ("first key on the first line, objects one after another",
     b'{"id": "a",\n "n": 1}\n{"id": "b",\n "n": 2}\n', Shape.NDJSON,
     [(1, {"id": "a", "n": 1}), (3, {"id": "b", "n": 2})]),
    ("first key on the first line, then NDJSON rows", b'{"id": "a",\n "n": 1}\n{"id": "b"}\n',
     Shape.NDJSON, [(1, {"id": "a", "n": 1}), (3, {"id": "b"})]),
    ("a stray line opening an array, then rows", b'{"a": [\n{"id": "b"}\n{"id": "c"}\n',
     Shape.NDJSON, [(1, "malformed"), (2, {"id": "b"}), (3, {"id": "c"})]),
    ("a broken line mid-file, then rows", b'{"id": "a"}\n{"id": \n{"id": "c"}\n{"id": "d"}\n',
     Shape.NDJSON, [(1, {"id": "a"}), (2, "malformed"), (3, {"id": "c"}), (4, {"id": "d"})]),
    ("a lone comma after a broken line", b'{"id": \n{"id": "b"}\n,\n', Shape.NDJSON,
     [(1, "malformed"), (2, {"id": "b"}), (3, "malformed")]),
    ("NaN and Infinity, as json.dump writes them",
     b'{"s": NaN, "t": Infinity}\n{"s": -Infinity}\n', Shape.NDJSON,
     [(1, {"s": "nan", "t": "inf"}), (2, {"s": "-inf"})]),
    ("NaN in an array", b'[\n{"s": NaN},\n{"s": 1}\n]', Shape.ARRAY,
     [(2, {"s": "nan"}), (3, {"s": 1})]),
    ("NaN in pretty-printed objects", b'{\n "s": NaN\n}\n', Shape.OBJECTS, [(1, {"s": "nan"})]),
    ("NaN in a string is still broken JSON", b'{"s": "NaN}\n', Shape.NDJSON, [(1, "malformed")]),
    ("lower-case nan is not JSON", b'{"s": nan}\n', Shape.NDJSON, [(1, "malformed")]),
    ("NaN beside a lone surrogate is refused as orjson refuses it",
     b'{"s": NaN, "t": "\\ud800"}\n', Shape.NDJSON, [(1, "malformed")]),
    ("NaN beside an integer over 64 bits", b'{"s": NaN, "t": 100000000000000000000000}\n',
     Shape.NDJSON, [(1, "malformed")]),
    ("empty file", b"", Shape.EMPTY, []),
    ("blank file", b" \r\n\n\t\n", Shape.EMPTY, []),
    ("BOM only", b"\xef\xbb\xbf", Shape.EMPTY, []),
]  # fmt: skip


def _plain(records: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    return [(line, "malformed" if type(v) is Malformed else _floats(v)) for line, v in records]


def _floats(value: Any) -> Any:
    """Non-finite floats as strings (NaN != NaN), inside dicts."""
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(
    ("data", "shape", "expected"),
    [pytest.param(data, shape, expected, id=case) for case, data, shape, expected in SHAPES],
)
def test_shapes(
    tmp_path: Path, data: bytes, shape: Shape, expected: list[tuple[int, Any]], compress: bool
) -> None:
    path = tmp_path / "rows.json"
    path.write_bytes(gzip.compress(data) if compress else data)
    with open_records(path) as (found, records):
        assert found is shape
        assert _plain(list(records)) == expected


def test_a_large_array_streams_with_line_numbers(tmp_path: Path) -> None:
    rows = [{"id": str(i), "pad": "x" * 500} for i in range(5000)]
    path = tmp_path / "big.json"
    path.write_bytes(b"[\n" + b",\n".join(orjson.dumps(r) for r in rows) + b"\n]\n")
    seen = values(path)
    assert [v for _, v in seen] == rows
    assert [line for line, _ in seen] == list(range(2, 5002))


@pytest.mark.parametrize(
    ("data", "looks"),
    [
        (b"id,name,score\n1,a,0.5\n", "CSV"),
        (b"<html><body>sign in</body></html>", "HTML"),
        ('{"id": "a"}\n'.encode("utf-16"), "UTF-16"),
        (b"PK\x03\x04\x14\x00\x00\x00", "ZIP"),
        (b"\x00\x01\x02\x03binary", "binary"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),
        (b"\xc3\x28 not utf-8 text", "not UTF-8"),
        (b"PAR1\x15\x04", "Parquet"),
        (b"just some words\n", "starts with"),
    ],
)
def test_other_files_are_refused_once_saying_what_they_look_like(
    tmp_path: Path, data: bytes, looks: str
) -> None:
    path = tmp_path / "rows.json"
    path.write_bytes(data)
    with pytest.raises(InputError, match=looks):
        values(path)


def test_a_damaged_gzip_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "rows.json.gz"
    data = b"".join(orjson.dumps({"id": str(i * 7919 % 10007)}) + b"\n" for i in range(5000))
    compressed = gzip.compress(data)
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(InputError, match="cannot read"):
        values(path)


def test_documents_read_whole_with_bom_and_gzip(tmp_path: Path) -> None:
    doc = {"images": [{"id": 1}], "annotations": []}
    path = tmp_path / "gt.json"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbf" + orjson.dumps(doc, option=orjson.OPT_INDENT_2)))
    assert read_document(path) == doc
    path.write_bytes(b"id,name\n1,a\n")
    with pytest.raises(InputError, match="CSV"):
        read_document(path)
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_document(path)


def test_documents_with_nan_literals_are_read(tmp_path: Path) -> None:
    path = tmp_path / "gt.json"
    path.write_bytes(b'{"images": [{"id": 1}],\n"annotations": [{"area": NaN, "s": -Infinity}]}')
    doc = read_document(path)
    assert math.isnan(doc["annotations"][0]["area"]) and doc["annotations"][0]["s"] == -math.inf
    path.write_bytes(b'{"images": [], "x": nan}')
    with pytest.raises(InputError, match="not JSON"):
        read_document(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(max_size=400),
        st.lists(
            st.sampled_from([b"[", b"]", b"{", b"}", b",", b'"a"', b":", b"1", b"\n", b"\\", b" "]),
            max_size=60,
        ).map(b"".join),
    ),
    compress=st.booleans(),
)
def test_arbitrary_bytes_give_records_or_one_input_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, compress: bool
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "rows.json"
    path.write_bytes(gzip.compress(data) if compress else data)
    try:
        records = values(path)
    except InputError:
        return
    lines = data.count(b"\n") + 1
    for line, value in records:
        assert 1 <= line <= lines
        assert type(value) is Malformed or value is None or isinstance(value, object)
