"""The convert fast path's row kernel: model-run export lines to Vertex rows, in numba.

`scan_rows` walks a chunk of export lines (bytes) and applies the conversion rules of
`vmt.formats.labelbox_export` and `vmt.formats.labelbox_to_vertex` to the usual row (a
model-run export v2 row with one run, or the run chosen by id) without building Python objects:
it validates the whole line as JSON (`vmt.formats.json_scan`), keeps the fields the rules read,
and decides the row. It stops at the first line it cannot decide with certainty and reports it
as a fallback; the caller runs the reference parser on that line and resumes after it. So the
reference decides every unusual line (escaped or non-ASCII identifiers, duplicate keys, number
forms whose value it cannot prove, project or v1 rows, several runs, ``--unassigned auto``),
and every line whose rejection or warning still needs an example for the report. What the
kernel accepts it decides exactly as the reference would (tests run both on the same lines).

Rows it writes go to the output arrays (``rows``, ``names``, ``coords``) until they are full;
counts go to ``counters`` and the per-class tables. ``vmt.formats.convert_stream`` drives it.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from vmt.formats.json_scan import (
    _PLAIN_BYTE,
    ESCAPED,
    FLOAT,
    INT,
    PLAIN,
    UNSURE,
    Array,
    literal_end,
    scan_number,
    scan_string,
    skip_ws,
)

# Why scan_rows returned.
END, FALLBACK, FLUSH, GROW = 0, 1, 2, 3

# ctx slots (int64): where the kernel is, what it holds, where it stopped.
POS, LINE, NROWS, NBOXES, OUT_BYTES, STOP_START, STOP_END, STOP_LINE, NCLASSES, NSEEN, SERIAL = (
    range(11)
)
CTX_SIZE = 11

# params slots.
HAS_PREFIX, POLICY, HAS_WANTED = range(3)
POLICY_SKIP, POLICY_AUTO = 0, 4
"""Policies 1, 2, 3 put unassigned rows in training, validation, test."""

# counters slots: rows read, written, boxes written, then the rejection codes (in the order of
# labelbox_export.REJECTION_CODES), then the warning codes (export_boxes.WARNING_CODES).
READ, WRITTEN, BOXES = 0, 1, 2
REJECTED = 3
WARNED = REJECTED + 10
COUNTERS_SIZE = WARNED + 5
R_DUPLICATE, R_NOT_IMAGE, R_DIMENSIONS, R_UNASSIGNED, R_NO_BOXES, R_NOT_IN_GCS = 3, 4, 5, 6, 8, 9
W_INVALID, W_DEGENERATE, W_TOO_SMALL, W_CLIPPED, W_UNSUPPORTED = range(5)

# rows columns.
URI_START, URI_LEN, URI_KIND, EXT, SPLIT, BOX_FIRST, NBOX = range(7)
ROW_COLUMNS = 7
URI_ROW_DATA, URI_PREFIX = 0, 1
MAX_BOXES = 500

# Value types of the fields a row's rules read.
T_ABSENT, T_STR, T_ESC, T_INT, T_FLOAT, T_NUMBER, T_NULL, T_OBJ, T_ARR, T_OTHER = range(10)

# Roles of the containers met while walking a line, and the fields read from them.
(R_OTHER, R_ROOT, R_DATA_ROW, R_MEDIA, R_EXPERIMENTS, R_MODEL, R_RUNS, R_RUN) = range(8)
(R_LABELS, R_LABEL0, R_ANNOTATIONS, R_OBJECTS, R_OBJECT, R_BBOX) = range(8, 14)
(F_NONE, F_DATA_ROW, F_MEDIA, F_EXPERIMENTS, F_ID, F_ROW_DATA, F_MIME, F_WIDTH) = range(8)
(F_HEIGHT, F_MODEL, F_RUNS, F_RUN, F_SPLIT, F_LABELS, F_LABEL0, F_ANNOTATIONS) = range(8, 16)
(F_OBJECTS, F_OBJECT, F_OTHER_RUN) = range(16, 19)
(F_NAME, F_BBOX, F_LEFT, F_TOP, F_BOX_W, F_BOX_H) = range(19, 25)
"""The fields of a box object, last: ``field - F_NAME`` is their column in ``otype``."""
N_FIELDS = 25
_REPEATABLE = (1 << F_NONE) | (1 << F_MODEL) | (1 << F_RUN) | (1 << F_OTHER_RUN)
_REPEATABLE |= (1 << F_OBJECT) | (1 << F_LABEL0)
_MAX_DEPTH = 64


def _key(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8).copy()


K_DATA_ROW, K_MEDIA, K_EXPERIMENTS = _key("data_row"), _key("media_attributes"), _key("experiments")
K_ID, K_ROW_DATA, K_MIME = _key("id"), _key("row_data"), _key("mime_type")
K_WIDTH, K_HEIGHT, K_RUNS, K_SPLIT = _key("width"), _key("height"), _key("runs"), _key("split")
K_LABELS, K_ANNOTATIONS, K_OBJECTS = _key("labels"), _key("annotations"), _key("objects")
K_NAME, K_BBOX, K_LEFT, K_TOP = _key("name"), _key("bounding_box"), _key("left"), _key("top")
K_IMAGE = _key("image/")
S_TRAINING, S_TRAIN, S_VALIDATION = _key("training"), _key("train"), _key("validation")
S_VAL, S_TEST = _key("val"), _key("test")


@nb.njit(cache=True, nogil=True)
def new_stack() -> Array:
    """Scratch space for `read_line`."""
    return np.zeros((4, _MAX_DEPTH), dtype=np.int64)


@nb.njit(cache=True, nogil=True, inline="always")
def _eq(buf: Array, start: int, length: int, key: Array) -> bool:
    if length != key.shape[0]:
        return False
    for k in range(length):
        if buf[start + k] != key[k]:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def _ascii_lower_eq(buf: Array, start: int, length: int, key: Array) -> bool:
    if length != key.shape[0]:
        return False
    for k in range(length):
        c = buf[start + k]
        if 65 <= c <= 90:
            c += 32
        if c != key[k]:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def _is_ascii(buf: Array, start: int, length: int) -> bool:
    for k in range(start, start + length):
        if buf[k] >= 128:
            return False
    return True


@nb.njit(cache=True, nogil=True, inline="always")
def _key_field(role: int, buf: Array, s: int, n: int, wanted: Array, has_wanted: bool) -> int:
    if role == R_OTHER:
        return F_NONE
    if role == R_OBJECT:
        if _eq(buf, s, n, K_NAME):
            return F_NAME
        if _eq(buf, s, n, K_BBOX):
            return F_BBOX
    elif role == R_BBOX:
        if _eq(buf, s, n, K_LEFT):
            return F_LEFT
        if _eq(buf, s, n, K_TOP):
            return F_TOP
        if _eq(buf, s, n, K_WIDTH):
            return F_BOX_W
        if _eq(buf, s, n, K_HEIGHT):
            return F_BOX_H
    elif role == R_ROOT:
        if _eq(buf, s, n, K_DATA_ROW):
            return F_DATA_ROW
        if _eq(buf, s, n, K_MEDIA):
            return F_MEDIA
        if _eq(buf, s, n, K_EXPERIMENTS):
            return F_EXPERIMENTS
    elif role == R_DATA_ROW:
        if _eq(buf, s, n, K_ID):
            return F_ID
        if _eq(buf, s, n, K_ROW_DATA):
            return F_ROW_DATA
    elif role == R_MEDIA:
        if _eq(buf, s, n, K_MIME):
            return F_MIME
        if _eq(buf, s, n, K_WIDTH):
            return F_WIDTH
        if _eq(buf, s, n, K_HEIGHT):
            return F_HEIGHT
    elif role == R_EXPERIMENTS:
        return F_MODEL
    elif role == R_MODEL:
        if _eq(buf, s, n, K_RUNS):
            return F_RUNS
    elif role == R_RUNS:
        if has_wanted and not _eq(buf, s, n, wanted):
            return F_OTHER_RUN
        return F_RUN
    elif role == R_RUN:
        if _eq(buf, s, n, K_SPLIT):
            return F_SPLIT
        if _eq(buf, s, n, K_LABELS):
            return F_LABELS
    elif role == R_LABEL0:
        if _eq(buf, s, n, K_ANNOTATIONS):
            return F_ANNOTATIONS
    elif role == R_ANNOTATIONS:
        if _eq(buf, s, n, K_OBJECTS):
            return F_OBJECTS
    return F_NONE


@nb.njit(cache=True, nogil=True, inline="always")
def _child_role(field: int, is_object: bool) -> int:
    if is_object:
        if field == F_DATA_ROW:
            return R_DATA_ROW
        if field == F_MEDIA:
            return R_MEDIA
        if field == F_EXPERIMENTS:
            return R_EXPERIMENTS
        if field == F_MODEL:
            return R_MODEL
        if field == F_RUNS:
            return R_RUNS
        if field == F_RUN:
            return R_RUN
        if field == F_LABEL0:
            return R_LABEL0
        if field == F_ANNOTATIONS:
            return R_ANNOTATIONS
        if field == F_OBJECT:
            return R_OBJECT
        if field == F_BBOX:
            return R_BBOX
        return R_OTHER
    if field == F_LABELS:
        return R_LABELS
    if field == F_OBJECTS:
        return R_OBJECTS
    return R_OTHER


@nb.njit(cache=True, nogil=True, inline="always")
def _record_kind(field: int, kind: int, box: int, ftype: Array, otype: Array) -> None:
    """Note the type of a field's value (a row field, or a field of box object ``box``)."""
    if field >= F_NAME:
        otype[box, field - F_NAME] = kind
    elif field != F_NONE:
        ftype[field] = kind


@nb.njit(cache=True, nogil=True, inline="always")
def read_line(
    buf: Array,
    i: int,
    end: int,
    wanted: Array,
    has_wanted: bool,
    ftype: Array,
    fstart: Array,
    flen: Array,
    fint: Array,
    otype: Array,
    ostart: Array,
    olen: Array,
    oval: Array,
    runs: Array,
    stack: Array,
) -> tuple[int, int]:
    """Walk the line at ``i``, keeping the fields the rules read: (the number of box objects,
    the index of the newline that ends the line, or ``end``), or (-1, 0) when the line is not
    provably valid JSON of the usual shape (a fallback, or a blank line).

    ``stack`` is scratch space (`new_stack`): per open container its role, kind, element
    count and the bits of the fields already met in it.
    """
    for k in range(N_FIELDS):
        ftype[k] = T_ABSENT
    runs[0] = runs[1] = 0
    roles = stack[0]
    is_obj = stack[1]
    counts = stack[2]
    masks = stack[3]
    nobj = 0
    i = skip_ws(buf, i, end)
    if i >= end or buf[i] != 123:
        return -1, 0
    depth = 1
    roles[0] = R_ROOT
    is_obj[0] = 1
    counts[0] = 0
    masks[0] = 0
    i += 1
    first = True
    while True:
        f = depth - 1
        i = skip_ws(buf, i, end)
        if i >= end:
            return -1, 0
        c = buf[i]
        closing = 125 if is_obj[f] else 93
        if first and c == closing:
            i += 1
            depth -= 1
        else:
            role = roles[f]
            if is_obj[f]:
                if c != 34:
                    return -1, 0
                ks = i + 1
                i = ks
                while _PLAIN_BYTE[buf[i]]:
                    i += 1
                if buf[i] == 34 and i < end:
                    i += 1
                    kind = PLAIN
                else:
                    i, kind = scan_string(buf, ks, end)
                    if kind == UNSURE:
                        return -1, 0
                if kind == ESCAPED:
                    if role != R_OTHER:
                        return -1, 0
                    field = F_NONE
                else:
                    field = _key_field(role, buf, ks, i - 1 - ks, wanted, has_wanted)
                bit = np.int64(1) << field
                if not (_REPEATABLE & bit):
                    if masks[f] & bit:
                        return -1, 0
                    masks[f] |= bit
                i = skip_ws(buf, i, end)
                if i >= end or buf[i] != 58:
                    return -1, 0
                i = skip_ws(buf, i + 1, end)
                if i >= end:
                    return -1, 0
            else:
                field = F_NONE
                if role == R_LABELS:
                    if counts[f] == 0:
                        field = F_LABEL0
                elif role == R_OBJECTS:
                    field = F_OBJECT
            counts[f] += 1
            c = buf[i]
            if field == F_OBJECT:
                if c != 123:
                    return -1, 0
                nobj += 1
                if nobj > MAX_BOXES:
                    return -1, 0
                for k in range(6):
                    otype[nobj - 1, k] = T_ABSENT
            elif field == F_RUN:
                runs[0] += 1
                if c == 123:
                    runs[1] += 1
            box = nobj - 1
            if c == 123 or c == 91:
                if depth == _MAX_DEPTH:
                    return -1, 0
                opens_object = c == 123
                _record_kind(field, T_OBJ if opens_object else T_ARR, box, ftype, otype)
                roles[depth] = _child_role(field, opens_object)
                is_obj[depth] = opens_object
                counts[depth] = 0
                masks[depth] = 0
                depth += 1
                i += 1
                first = True
                continue
            if c == 34:
                s = i + 1
                i = s
                while _PLAIN_BYTE[buf[i]]:
                    i += 1
                if buf[i] == 34 and i < end:
                    i += 1
                    kind = PLAIN
                else:
                    i, kind = scan_string(buf, s, end)
                    if kind == UNSURE:
                        return -1, 0
                _record_kind(field, T_STR if kind == PLAIN else T_ESC, box, ftype, otype)
                if field == F_NAME:
                    ostart[box] = s
                    olen[box] = i - 1 - s
                elif field < F_NAME:
                    fstart[field] = s
                    flen[field] = i - 1 - s
            elif c == 45 or 48 <= c <= 57:
                i, kind, int_value, float_value = scan_number(buf, i, end)
                if kind == UNSURE:
                    return -1, 0
                if kind == INT:
                    kind = T_INT
                    float_value = float(int_value)
                elif kind == FLOAT:
                    kind = T_FLOAT
                else:
                    kind = T_NUMBER
                _record_kind(field, kind, box, ftype, otype)
                if field >= F_LEFT:
                    oval[box, field - F_LEFT] = float_value
                elif field < F_NAME:
                    fint[field] = int_value
            else:
                after = literal_end(buf, i, end)
                if after < 0:
                    return -1, 0
                i = after
                _record_kind(field, T_NULL if c == 110 else T_OTHER, box, ftype, otype)
        # After a value (or a container just closed): a comma, or the end of containers.
        first = False
        while depth > 0:
            f = depth - 1
            i = skip_ws(buf, i, end)
            if i >= end:
                return -1, 0
            c = buf[i]
            if c == 44:
                i += 1
                break
            if c != (125 if is_obj[f] else 93):
                return -1, 0
            i += 1
            depth -= 1
        if depth == 0:
            break
    i = skip_ws(buf, i, end)
    if i < end and buf[i] != 10:
        return -1, 0
    return nobj, i
