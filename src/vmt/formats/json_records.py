"""Open any JSON file a user has and read it as records: the one place files are opened and parsed.

Every reader (Labelbox exports, prediction NDJSON, COCO JSON, Vertex batch output) goes through
here, so every whole-file shape is accepted everywhere:

- gzip-compressed (recognised by its magic bytes, whatever the file name);
- a UTF-8 byte-order mark (dropped); CRLF line ends;
- NDJSON / JSONL: one JSON value per line;
- a JSON array, however it is laid out: one element per line (with or without trailing commas),
  pretty-printed at any indentation, or on a single line;
- pretty-printed JSON objects one after another (what ``json.dump(..., indent=2)`` writes: the
  first line is a lone ``{``);
- a JSON object spread over lines with its first key on the first line (``{"images": [...],``
  then the rest on later lines, as hand-edited and tool-written COCO files have): one record;
- an empty (or all-blank) file: no records.

``NaN``, ``Infinity`` and ``-Infinity`` literals (what Python's ``json.dump`` and pandas write)
are read as floats: a value orjson refuses is parsed again by the standard library's ``json`` when
it holds such a literal (only then: the fast path stays orjson's). What the caller does with a
non-finite number is its business (a score or a box that is not finite is reported there).

Records stream line by line in constant memory (a whole single-line array is one line, so it is
read at once). A broken line never swallows the rows after it: a value left open is given up, and
its lines reported one by one, as soon as a line comes that cannot continue it (a complete
object directly inside an object, or two complete objects in a row). A file that is none of
these (UTF-16, CSV, HTML, a ZIP...) is refused once with an ``InputError`` that says what it
looks like. Record line numbers are 1-based physical lines of
the (decompressed) file: where the record starts.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from itertools import chain
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson

from vmt.errors import InputError

__all__ = [
    "Malformed",
    "Shape",
    "ndjson_records",
    "open_records",
    "read_document",
    "read_records",
]

_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"
_HEAD_BYTES = 1 << 16
_CHUNK_BYTES = 1 << 20
_STRING = re.compile(rb'"(?:[^"\\\n]|\\.)*"')


class Shape(StrEnum):
    EMPTY = "empty"
    NDJSON = "ndjson"
    ARRAY = "array"
    OBJECTS = "objects"
    """Pretty-printed objects one after another."""


class Malformed(NamedTuple):
    """A record that is not JSON; ``detail`` says why (orjson's message, clipped)."""

    detail: str


Record = tuple[int, Any]
"""``(line, value)``: the parsed JSON value, or a `Malformed` in its place."""


def read_records(path: Path, progress: Callable[[int], None] | None = None) -> Iterator[Record]:
    """The records of ``path`` in file order (see the module docstring for the shapes).

    ``progress`` is called now and then with the bytes of the file (compressed) read so far.
    Raises ``InputError`` when the file cannot be read or is not JSON in any accepted shape.
    """
    with open_records(path, progress) as (_, records):
        yield from records


@contextmanager
def open_records(
    path: Path, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[Shape, Iterator[Record]]]:
    """The file's shape and its records; the file is closed when the context exits."""
    with _open(path) as (raw, stream):
        head = stream.peek(_HEAD_BYTES)[:_HEAD_BYTES]
        shape = detect_shape(head, path)
        lines = _lines(path, raw, stream, progress)
        if shape is Shape.NDJSON:
            yield shape, ndjson_records(lines)
        elif shape is Shape.ARRAY:
            yield shape, _nested_records(lines, in_array=True)
        elif shape is Shape.OBJECTS:
            yield shape, _nested_records(lines, in_array=False)
        else:
            yield shape, iter(())


def read_document(path: Path) -> Any:
    """The whole file as one JSON value (e.g. a COCO ground-truth document).

    Raises ``InputError`` when the file cannot be read or is not one JSON value.
    """
    with _open(path) as (_, stream):
        try:
            data = stream.read()
        except (OSError, EOFError) as exc:
            raise InputError(f"cannot read {path}: {exc}") from exc
    if not data.strip():
        raise InputError(f"{path} is empty")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        value = _loads_with_constants(data, exc)
        if type(value) is not Malformed:
            return value
        looks = _looks_like(data[:_HEAD_BYTES])
        hint = f"; it looks like {looks}" if looks else ""
        raise InputError(f"{path} is not JSON ({exc.msg}, line {exc.lineno}){hint}") from exc


def ndjson_records(lines: Iterable[bytes]) -> Iterator[Record]:
    """One record per non-blank line (line numbers count every line from 1).

    A line that opens a value it does not close (``{"images": [...],``) starts a value spread
    over lines: from there on the lines are read as `_nested_records` reads them, so a complete
    multi-line value is one record and a stray broken line is reported alone.
    """
    loads = orjson.loads
    rest = iter(lines)
    for line, raw in enumerate(rest, 1):
        try:
            yield line, loads(raw)
        except orjson.JSONDecodeError as exc:
            if not raw or raw.isspace():
                continue
            value = _loads_with_constants(raw, exc)
            if type(value) is Malformed and _opens_value(raw):
                yield from _nested_records(chain([raw], rest), in_array=False, first_line=line)
                return
            yield line, value


def detect_shape(head: bytes, path: Path | str = "the file") -> Shape:
    """The shape of a file from its first bytes (BOM already dropped, decompressed).

    Raises ``InputError`` for a file that is none of the accepted shapes.
    """
    text = head.lstrip()
    if not text:
        return Shape.EMPTY
    if text[:1] == b"[":
        return Shape.ARRAY
    if text[:1] == b"{":
        first_line = text.split(b"\n", 1)[0].strip()
        return Shape.OBJECTS if first_line == b"{" else Shape.NDJSON
    for line in text.split(b"\n", 64)[:64]:
        if line.strip()[:1] == b"{":
            return Shape.NDJSON  # a broken first line does not hide the rows after it
    looks = _looks_like(head)
    raise InputError(
        f"{path} is not JSON, JSON Lines or a JSON array"
        + (f": it looks like {looks}" if looks else f" (it starts with {text[:40]!r})")
    )


@contextmanager
def _open(path: Path) -> Iterator[tuple[IO[bytes], Any]]:
    """(the file as opened, the decompressed stream with any BOM dropped: it has ``peek``)."""
    try:
        raw = Path(path).open("rb", buffering=_CHUNK_BYTES)  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    with raw:
        stream: Any = raw
        try:
            if stream.peek(2)[:2] == _GZIP_MAGIC:
                stream = io.BufferedReader(gzip.GzipFile(fileobj=raw), _CHUNK_BYTES)
            if stream.peek(3)[:3] == _BOM:
                stream.read(3)
        except (OSError, EOFError) as exc:
            raise InputError(f"cannot read {path}: {exc}") from exc
        yield raw, stream


def _lines(
    path: Path, raw: IO[bytes], stream: Any, progress: Callable[[int], None] | None
) -> Iterator[bytes]:
    """Lines in chunks (no per-line Python call), reporting progress per chunk."""
    while True:
        try:
            lines = stream.readlines(_CHUNK_BYTES)
        except (OSError, EOFError) as exc:  # a damaged or truncated .gz
            raise InputError(f"cannot read {path}: {exc}") from exc
        if not lines:
            return
        yield from lines
        if progress is not None:
            progress(raw.tell())


def _nested_records(
    lines: Iterable[bytes], *, in_array: bool, first_line: int = 1
) -> Iterator[Record]:
    """Top-level values of a JSON array (``in_array``) or of pretty-printed objects one after
    another. JSON strings hold no raw newline, so bracket depth can be counted line by line.
    A value left open is given up (its lines read one by one, see `_each_line`) at the first
    line that cannot continue it (`_cannot_continue`)."""
    base = 1 if in_array else 0
    depth = 0
    started = not in_array
    closed = False
    pending: list[bytes] = []
    numbers: list[int] = []
    start = 0
    loads = orjson.loads
    line = 0
    last_complete = False
    for line, raw in enumerate(lines, first_line):
        text = raw.strip()
        if not text:
            continue
        if closed:
            yield line, Malformed("text after the end of the JSON array")
            continue
        if not started:  # the array's opening bracket
            text = text[1:].lstrip()
            started, depth = True, 1
            if not text:
                continue
        complete = False
        if pending and text[:1] == b"{" and text[-1:] == b"}":
            complete = type(_loads_line(text)) is not Malformed
            if complete and (last_complete or _cannot_continue(pending, depth - base)):
                yield from _each_line(pending, numbers)
                pending, numbers, depth, complete = [], [], base, False
        last_complete = complete
        if depth == base and not pending:
            body = text.strip(b",").strip() if in_array else text
            if body[:1] in (b"{", b"[") and body[-1:] in (b"}", b"]"):
                try:
                    yield line, loads(body)  # the usual case: one complete value on the line
                    continue
                except orjson.JSONDecodeError as exc:
                    value = _loads_with_constants(body, exc)
                    if type(value) is not Malformed:
                        yield line, value
                        continue
            start = line
        depth += _depth_change(text)
        pending.append(text)
        numbers.append(line)
        if in_array and depth <= 0:
            closed = True
            last = pending[-1].rstrip()
            pending[-1] = last[:-1] if last.endswith(b"]") else last
            yield from _flush(pending, start, in_array, numbers)
            pending, numbers = [], []
        elif depth <= base:
            yield from _flush(pending, start, in_array, numbers)
            pending, numbers = [], []
            depth = base
    if pending or (in_array and started and not closed):
        yield from _flush(pending, start, in_array, numbers)
        if in_array:
            yield line, Malformed("the JSON array is not closed (a truncated file?)")


def _flush(
    pending: list[bytes], line: int, in_array: bool, numbers: list[int] | None = None
) -> Iterator[Record]:
    """The value(s) of the pending lines. When they do not parse as one value (a stray or
    unbalanced line), each line is read on its own as JSON Lines would be: the complete rows
    among them are kept and only the broken lines are reported, each with its number."""
    chunk = b"\n".join(pending).strip().strip(b",").strip()
    if not chunk:
        if not in_array and any(pending):  # commas between top-level objects: not JSON
            yield line, Malformed("a line of commas between values")
        pending.clear()
        return
    parsed = _loads_line(b"[" + chunk + b"]" if in_array else chunk)
    if type(parsed) is not Malformed:
        values = [(line, value) for value in parsed] if in_array else [(line, parsed)]
    elif numbers is None or len(numbers) != len(pending) or len(pending) < 2:
        values = [(line, parsed)]
    else:
        values = list(_each_line(pending, numbers))
    pending.clear()
    yield from values


def _each_line(pending: list[bytes], numbers: list[int]) -> Iterator[Record]:
    for number, text in zip(numbers, pending, strict=True):
        body = text.strip().strip(b",").strip()
        if body in (b"{", b"}", b"[", b"]", b""):
            yield number, Malformed(f"a lone {body.decode() or 'blank'!s} line")
            continue
        yield number, _loads_line(body)


def _cannot_continue(pending: list[bytes], open_brackets: int) -> bool:
    """Whether a complete object on its own line cannot be the next line of the value open in
    ``pending``: directly inside an object (one bracket open, the value's own ``{``) a line
    must start with a key, unless the line before ends with one (``"key":``)."""
    return open_brackets == 1 and pending[0][:1] == b"{" and not pending[-1].endswith(b":")


def _opens_value(raw: bytes) -> bool:
    """Whether a line that is not JSON on its own starts an object it leaves open."""
    text = raw.strip()
    return text[:1] == b"{" and _depth_change(text) > 0


def _loads_line(data: bytes) -> Any:
    """The JSON value of ``data``, or a `Malformed` saying why not."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return _loads_with_constants(data, exc)


def _loads_with_constants(data: bytes, error: orjson.JSONDecodeError) -> Any:
    """``data`` that orjson refused (``error``) read by the standard library's parser when it
    holds a ``NaN`` / ``Infinity`` literal, else (or when that fails too) a `Malformed` with
    orjson's message. A value orjson could not write back (a lone surrogate, an integer over
    64 bits) is refused as orjson would refuse it."""
    if b"NaN" in data or b"Infinity" in data:
        try:
            value = json.loads(data.decode("utf-8"))
            orjson.dumps(value)
        except (ValueError, RecursionError, TypeError, orjson.JSONEncodeError):
            pass
        else:
            return value
    return Malformed(_clip(str(error)))


def _depth_change(text: bytes) -> int:
    if b'"' in text:
        text = _STRING.sub(b"", text)
    return text.count(b"{") + text.count(b"[") - text.count(b"}") - text.count(b"]")


def _looks_like(head: bytes) -> str:
    """A few words on what a file that is not JSON looks like ('' when there is nothing to say)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text (save it as UTF-8)"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive (unzip it first)"
    if head.startswith(b"PAR1"):
        return "a Parquet file"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if b"\x00" in head[:1024]:
        return "binary data"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "text that is not UTF-8"
    first = text.lstrip()[:1]
    if first in ("{", "["):
        return ""  # JSON, broken: the parser's message says where
    if first == "<":
        return "HTML or XML"
    first_line = text.lstrip().split("\n", 1)[0]
    if "," in first_line or "\t" in first_line:
        return "CSV or TSV (a table, not JSON)"
    return ""


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
