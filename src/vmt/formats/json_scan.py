"""Byte-level JSON tokens for the convert fast path, compiled with numba.

Each scanner accepts only what it can prove orjson accepts, and reads numbers only where the
value is provably the one orjson would produce. Anything else is reported as unsure, and the
caller hands the whole line to the reference parser (orjson + Python), so the fast path can
be strict without ever disagreeing with it:

- strings: valid UTF-8, no raw control characters; escapes are validated, and a ``\\u`` escape
  in the surrogate range is unsure (orjson's pairing rules are not replicated);
- numbers: the JSON grammar; the value only for integers of up to 15 digits and decimals of up
  to 15 digits in all without an exponent (then ``digits / 10**k`` is one correctly rounded
  division, Clinger's exact case); an exponent or over 18 integer digits is unsure (orjson may
  reject it as infinite, or turn a big integer into a float).
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np

Array = Any  # numba-compiled functions take and return numpy arrays

UNSURE = -1
"""A token the fast path cannot vouch for: the line goes to the reference parser."""

# String scan results.
PLAIN = 1
"""A string without escapes: its bytes are its UTF-8 text, and valid JSON output as they are."""
ESCAPED = 2
"""A valid string with escapes (its text differs from its bytes)."""

# Number scan results.
INT = 1
"""An integer of up to 15 digits (exact in a double)."""
FLOAT = 2
"""A decimal read exactly (Clinger's case)."""
NUMBER = 3
"""A valid number whose value the fast path does not compute."""

_POW10 = np.array([10.0**k for k in range(23)])
_PLAIN_BYTE = np.array([32 <= c < 128 and c not in (34, 92) for c in range(256)], dtype=np.bool_)
"""Bytes a string's text can hold as they are (ASCII, not a quote, backslash or control)."""


@nb.njit(cache=True, nogil=True, inline="always")
def skip_ws(buf: Array, i: int, end: int) -> int:
    """The index of the first non-whitespace byte at or after ``i``: JSON whitespace but the
    newline, which ends a line (so a scan bounded by the chunk never crosses into the next)."""
    while i < end:
        c = buf[i]
        if c != 32 and c != 13 and c != 9:
            return i
        i += 1
    return i


@nb.njit(cache=True, nogil=True)
def scan_string(buf: Array, i: int, end: int) -> tuple[int, int]:
    """Scan a string whose opening quote is at ``i - 1``: (index after the closing quote,
    PLAIN / ESCAPED / UNSURE).

    ``buf`` must hold a newline at ``end - 1`` or ``end`` (see `newline_ended`): the inner loop
    has no bounds test.
    """
    kind = PLAIN
    while i < end:
        while _PLAIN_BYTE[buf[i]]:  # stops at the newline ending the data at the latest
            i += 1
        if i >= end:
            break
        c = buf[i]
        if c == 34:  # "
            return i + 1, kind
        if c == 92:  # backslash
            if i + 1 >= end:
                return i, UNSURE
            e = buf[i + 1]
            kind = ESCAPED
            if e == 117:  # \uXXXX
                if i + 6 > end:
                    return i, UNSURE
                code = 0
                for k in range(i + 2, i + 6):
                    h = buf[k]
                    if 48 <= h <= 57:
                        code = code * 16 + (h - 48)
                    elif 97 <= h <= 102:
                        code = code * 16 + (h - 87)
                    elif 65 <= h <= 70:
                        code = code * 16 + (h - 55)
                    else:
                        return i, UNSURE
                if 0xD800 <= code <= 0xDFFF:
                    return i, UNSURE
                i += 6
                continue
            if e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110:
                i += 2
                continue
            if e == 114 or e == 116:
                i += 2
                continue
            return i, UNSURE
        if c < 32:
            return i, UNSURE
        if c < 128:
            i += 1
            continue
        # UTF-8 sequences, strictly (no overlong forms, no surrogates, nothing past U+10FFFF).
        if 0xC2 <= c <= 0xDF:
            if i + 1 >= end or buf[i + 1] & 0xC0 != 0x80:
                return i, UNSURE
            i += 2
        elif 0xE0 <= c <= 0xEF:
            if i + 2 >= end:
                return i, UNSURE
            c1 = buf[i + 1]
            lo = 0xA0 if c == 0xE0 else 0x80
            hi = 0x9F if c == 0xED else 0xBF
            if c1 < lo or c1 > hi or buf[i + 2] & 0xC0 != 0x80:
                return i, UNSURE
            i += 3
        elif 0xF0 <= c <= 0xF4:
            if i + 3 >= end:
                return i, UNSURE
            c1 = buf[i + 1]
            lo = 0x90 if c == 0xF0 else 0x80
            hi = 0x8F if c == 0xF4 else 0xBF
            if c1 < lo or c1 > hi or buf[i + 2] & 0xC0 != 0x80 or buf[i + 3] & 0xC0 != 0x80:
                return i, UNSURE
            i += 4
        else:
            return i, UNSURE
    return i, UNSURE


@nb.njit(cache=True, nogil=True)
def newline_ended(buf: Array, end: int) -> bool:
    """The condition `scan_string` relies on."""
    if end > 0 and buf[end - 1] == 10:
        return True
    return bool(end < buf.shape[0] and buf[end] == 10)


@nb.njit(cache=True, nogil=True)
def scan_number(buf: Array, i: int, end: int) -> tuple[int, int, int, float]:
    """Scan a number starting at ``i``: (index after it, INT / FLOAT / NUMBER / UNSURE,
    integer value, float value)."""
    negative = False
    if i < end and buf[i] == 45:  # -
        negative = True
        i += 1
    if i >= end:
        return i, UNSURE, 0, 0.0
    digits = 0
    mantissa = 0
    c = buf[i]
    if c == 48:  # a leading 0 stands alone
        digits = 1
        i += 1
    elif 49 <= c <= 57:
        while i < end and 48 <= buf[i] <= 57:
            if digits < 18:
                mantissa = mantissa * 10 + (buf[i] - 48)
            digits += 1
            i += 1
    else:
        return i, UNSURE, 0, 0.0
    if digits > 18:
        return i, UNSURE, 0, 0.0
    int_digits = digits
    fraction = 0
    if i < end and buf[i] == 46:  # .
        i += 1
        start = i
        while i < end and 48 <= buf[i] <= 57:
            if digits < 18:
                mantissa = mantissa * 10 + (buf[i] - 48)
            digits += 1
            i += 1
        fraction = i - start
        if fraction == 0:
            return i, UNSURE, 0, 0.0
    if i < end and (buf[i] == 101 or buf[i] == 69):  # e E
        return i, UNSURE, 0, 0.0
    if fraction == 0:
        if int_digits > 15:
            return i, NUMBER, 0, 0.0
        return i, INT, -mantissa if negative else mantissa, 0.0
    if digits > 15:
        return i, NUMBER, 0, 0.0
    value = mantissa / _POW10[fraction]
    return i, FLOAT, 0, -value if negative else value


@nb.njit(cache=True, nogil=True, inline="always")
def literal_end(buf: Array, i: int, end: int) -> int:
    """The index after ``true``, ``false`` or ``null`` at ``i``, or -1."""
    c = buf[i]
    if c == 116 and i + 4 <= end:  # true
        if buf[i + 1] == 114 and buf[i + 2] == 117 and buf[i + 3] == 101:
            return i + 4
    elif c == 102 and i + 5 <= end:  # false
        if buf[i + 1] == 97 and buf[i + 2] == 108 and buf[i + 3] == 115 and buf[i + 4] == 101:
            return i + 5
    elif c == 110 and i + 4 <= end:  # null
        if buf[i + 1] == 117 and buf[i + 2] == 108 and buf[i + 3] == 108:
            return i + 4
    return -1


@nb.njit(cache=True, nogil=True)
def hash_bytes(buf: Array, start: int, length: int) -> np.uint64:
    """FNV-1a over the bytes, then the splitmix64 finaliser; never 0 (0 marks a free slot)."""
    h = np.uint64(0xCBF29CE484222325)
    prime = np.uint64(0x100000001B3)
    for k in range(start, start + length):
        h = (h ^ np.uint64(buf[k])) * prime
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    h = h ^ (h >> np.uint64(31))
    if h == np.uint64(0):
        h = np.uint64(1)
    return h


@nb.njit(cache=True, nogil=True)
def table_find(keys: Array, h: np.uint64) -> int:
    """The slot of ``h`` in an open-addressing table, or of the free slot where it goes."""
    mask = keys.shape[0] - 1
    slot = np.int64(h & np.uint64(mask))
    while True:
        found = keys[slot]
        if found == np.uint64(0) or found == h:
            return int(slot)
        slot = (slot + 1) & mask


@nb.njit(cache=True, nogil=True)
def table_rehash(old_keys: Array, old_values: Array, keys: Array, values: Array) -> None:
    """Move every entry of the old table into a (larger, empty) one."""
    for k in range(old_keys.shape[0]):
        h = old_keys[k]
        if h != np.uint64(0):
            slot = table_find(keys, h)
            keys[slot] = h
            values[slot] = old_values[k]


@nb.njit(cache=True, nogil=True)
def table_add(keys: Array, text: Array) -> bool:
    """Remember the hash of ``text``'s bytes; True if it was new."""
    h = hash_bytes(text, 0, text.shape[0])
    slot = table_find(keys, h)
    if keys[slot] == h:
        return False
    keys[slot] = h
    return True
