"""A seeded mutator for hostile input: what a broken tool, a hand edit, a truncated download or an
attacker makes of a good file.

``Mutator(seed).mutate(data)`` applies one to three mutations, drawn from a seeded
``random.Random`` (the same seed gives the same inputs):

- JSON-aware (on a line of NDJSON or on a whole JSON document): replace a value anywhere in the
  tree with a hostile one (wrong type, NaN/huge/negative numbers, empty or enormous strings,
  deep nesting, control characters), delete a key, rename a key, wrap or unwrap a value;
- line-level: drop, duplicate, swap or truncate lines, join two, add a blank, a comment, a BOM,
  CRLF endings, a bracket or a trailing comma;
- byte-level: flip or insert bytes, invalid UTF-8, NUL, cut the file short;
- JSON as Python and pandas write it: a number in the text becomes a ``NaN``, ``Infinity`` or
  ``-Infinity`` literal, an integral float (``7`` -> ``7.0``, as pandas writes ids) or a
  non-integral one (``7.5``).
"""

from __future__ import annotations

import random
import re
from typing import Any

import orjson

HOSTILE_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    -(10**30),
    10**30,
    1e308,
    -1e-320,
    0.5,
    "",
    " ",
    "NaN",
    "Infinity",
    "-1",
    "1e999",
    "\x00",
    "\u202e\ufeff",
    "☃" * 3,
    "a" * 5000,
    "../../etc/passwd",
    "gs://",
    "http://",
    "image/jpg; charset=binary",
    "TRAINING",
    "validation",
    [],
    [None],
    [1, 2, 3, 4],
    [1.0, 2.0, -3.0, 4.0],
    {},
    {"": None},
    {"top": "1", "left": None},
)


_BAD_BYTES = (b"\x00", b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b'"', b"\\")
"""NUL, a UTF-16 BOM, invalid UTF-8, a UTF-16 surrogate in UTF-8, a quote, a backslash."""


class Mutator:
    def __init__(self, seed: int, *, document: bool = False) -> None:
        """``document``: inputs are one JSON document (COCO): mostly change values in the tree,
        so most inputs still parse and reach the per-entry checks."""
        self.rng = random.Random(seed)
        self.document = document

    def mutate(self, data: bytes) -> bytes:
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            if self.document and self.rng.random() < 0.2:
                data = self._python_numbers(data)
            elif self.document and self.rng.random() < 0.85:
                data = self._json_value(data)
            else:
                data = self.rng.choice(self._strategies)(self, data)
        return data

    # -- JSON-aware --

    def _json_value(self, data: bytes) -> bytes:
        """Parse a line (or the whole document) and change one value in the tree."""
        lines = data.split(b"\n")
        candidates = [i for i, line in enumerate(lines) if line.strip()]
        whole = self.document or self.rng.random() < 0.3 or not candidates
        try:
            if whole:
                doc = orjson.loads(data)
            else:
                index = self.rng.choice(candidates)
                doc = orjson.loads(lines[index])
        except orjson.JSONDecodeError:
            return self._bytes(data)
        doc = self._change(doc, depth=0)
        encoded = _dumps(doc)
        if whole:
            return encoded
        lines[index] = encoded
        return b"\n".join(lines)

    def _change(self, node: Any, depth: int) -> Any:
        rng = self.rng
        if isinstance(node, dict) and node and (depth < 2 or rng.random() < 0.7):
            key = rng.choice(list(node))
            roll = rng.random()
            if roll < 0.12:
                del node[key]
            elif roll < 0.2:
                node[key.upper() if rng.random() < 0.5 else key + "_"] = node.pop(key)
            elif roll < 0.25:
                node[rng.choice(("__proto__", "", "extra" * 3))] = self._hostile()
            else:
                node[key] = self._change(node[key], depth + 1)
            return node
        if isinstance(node, list) and node and (depth < 2 or rng.random() < 0.7):
            i = rng.randrange(len(node))
            roll = rng.random()
            if roll < 0.1:
                del node[i]
            elif roll < 0.18:
                node.append(node[i])
            else:
                node[i] = self._change(node[i], depth + 1)
            return node
        roll = rng.random()
        if roll < 0.1:
            return [node]
        if roll < 0.15:
            return {"value": node}
        if roll < 0.2 and isinstance(node, int | float) and not isinstance(node, bool):
            return str(node)
        if roll < 0.25 and isinstance(node, str) and node.replace(".", "", 1).isdigit():
            return float(node)
        if roll < 0.3:
            return _deep(rng.randint(50, 900))
        return self._hostile()

    def _hostile(self) -> Any:
        value = self.rng.choice(HOSTILE_VALUES)
        return orjson.loads(_dumps(value)) if isinstance(value, list | dict) else value

    # -- lines --

    def _lines(self, data: bytes) -> bytes:
        lines = data.split(b"\n")
        rng = self.rng
        i = rng.randrange(len(lines))
        roll = rng.random()
        if roll < 0.12:
            del lines[i]
        elif roll < 0.24:
            lines.insert(i, lines[i])
        elif roll < 0.34:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif roll < 0.46:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        elif roll < 0.54 and i + 1 < len(lines):
            lines[i : i + 2] = [lines[i] + lines[i + 1]]
        elif roll < 0.62:
            lines.insert(i, rng.choice((b"", b"   ", b"\t", b"# comment", b"//", b"null")))
        elif roll < 0.7:
            return b"\xef\xbb\xbf" + data
        elif roll < 0.78:
            return data.replace(b"\n", b"\r\n")
        elif roll < 0.86:
            lines[i] = lines[i] + b","
        elif roll < 0.93:
            return b"[\n" + b",\n".join(x for x in lines if x.strip()) + b"\n]"
        else:
            lines.insert(i, rng.choice((b"[", b"]", b"{", b"}", b"[]", b"{}")))
        return b"\n".join(lines)

    # -- JSON as Python and pandas write it --

    def _python_numbers(self, data: bytes) -> bytes:
        """One to three numbers of the text replaced by what ``json.dump`` / ``to_json`` write."""
        spans = [m.span(1) for m in _NUMBER.finditer(data)]
        if not spans:
            return data
        buf = bytearray(data)
        for start, end in sorted(self.rng.sample(spans, min(len(spans), 3)), reverse=True):
            number = bytes(buf[start:end])
            choices = [b"NaN", b"Infinity", b"-Infinity", number + b".5"]
            if number.lstrip(b"-").isdigit():
                choices += [number + b".0", number + b".0"]
            buf[start:end] = self.rng.choice(choices)
        return bytes(buf)

    # -- bytes --

    def _bytes(self, data: bytes) -> bytes:
        rng = self.rng
        buf = bytearray(data)
        roll = rng.random()
        at = rng.randrange(len(buf) + 1)
        if roll < 0.25 and buf:
            buf[min(at, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif roll < 0.45:
            buf[at:at] = rng.choice(_BAD_BYTES)
        elif roll < 0.6:
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif roll < 0.75 and buf:
            end = min(len(buf), at + rng.randint(1, 64))
            del buf[at:end]
        elif roll < 0.9:
            del buf[at:]
        else:
            end = min(len(buf), at + rng.randint(1, 256))
            buf[at:at] = buf[at:end]
        return bytes(buf)

    _strategies = (_json_value, _json_value, _json_value, _python_numbers, _lines, _lines, _bytes)


_NUMBER = re.compile(rb"[:\[,]\s*(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?=\s*[,\]}])")
"""A number as a JSON value (after ``:``, ``[`` or ``,``, before ``,``, ``]`` or ``}``)."""


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):  # an int beyond 64 bits: write it by hand
        import json

        return json.dumps(value).encode()


def _deep(depth: int) -> Any:
    node: Any = 1
    for _ in range(depth):
        node = [node]
    return node
