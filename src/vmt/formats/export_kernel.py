"""The convert fast path's rules and output, in numba: `scan_rows` and `assemble`.

`scan_rows` reads the lines of a chunk with `vmt.formats.export_scan.read_line` and decides
each one by the conversion rules, in their order (duplicate, image type, dimensions, split,
boxes, URI), mirroring `labelbox_export.RowReader`, `export_boxes.read_box` and
`labelbox_to_vertex.convert_export` operation for operation (the same double arithmetic, the
same comparisons). It stops at the first line it cannot decide with certainty (`FALLBACK`),
including any line whose rejection or warning code has not yet collected its report examples
(``full``); the caller runs the reference on that line and resumes. It also stops when its
output arrays are full (`FLUSH`) or a hash table needs to grow (`GROW`).

`assemble` writes the rows kept so far as Vertex import lines, byte for byte what
``orjson.dumps`` makes of `vertex.encode_import_line`'s dict; the coordinates come in as the
text orjson made of them (``coord_text``), so the numbers are formatted by orjson itself.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from vmt.formats.export_scan import (
    BOX_FIRST,
    BOXES,
    END,
    EXT,
    F_DATA_ROW,
    F_HEIGHT,
    F_ID,
    F_MEDIA,
    F_MIME,
    F_ROW_DATA,
    F_SPLIT,
    F_WIDTH,
    FALLBACK,
    FLUSH,
    GROW,
    HAS_PREFIX,
    HAS_WANTED,
    K_IMAGE,
    LINE,
    MAX_BOXES,
    N_FIELDS,
    NBOX,
    NBOXES,
    NCLASSES,
    NROWS,
    NSEEN,
    OUT_BYTES,
    POLICY,
    POLICY_AUTO,
    POLICY_SKIP,
    POS,
    R_DIMENSIONS,
    R_DUPLICATE,
    R_NO_BOXES,
    R_NOT_IMAGE,
    R_NOT_IN_GCS,
    R_UNASSIGNED,
    READ,
    REJECTED,
    S_TEST,
    S_TRAIN,
    S_TRAINING,
    S_VAL,
    S_VALIDATION,
    SERIAL,
    SPLIT,
    STOP_END,
    STOP_LINE,
    STOP_START,
    T_ABSENT,
    T_ESC,
    T_FLOAT,
    T_INT,
    T_NULL,
    T_NUMBER,
    T_OBJ,
    T_STR,
    URI_KIND,
    URI_LEN,
    URI_PREFIX,
    URI_ROW_DATA,
    URI_START,
    W_CLIPPED,
    W_DEGENERATE,
    W_INVALID,
    W_TOO_SMALL,
    W_UNSUPPORTED,
    WARNED,
    WRITTEN,
    _ascii_lower_eq,
    _eq,
    _is_ascii,
    new_stack,
    read_line,
)
from vmt.formats.json_scan import Array, hash_bytes, newline_ended, table_find

_GS = np.frombuffer(b"gs://", dtype=np.uint8).copy()
_ROW_BYTES = 160
"""Upper bound of an output row's fixed text (keys, split, brackets), without URI or boxes."""
_BOX_BYTES = 60 + 4 * 25
"""Upper bound of an output box's text without its name (4 numbers of at most 25 bytes)."""


@nb.njit(cache=True, nogil=True)
def _split_of(buf: Array, start: int, length: int) -> int:
    """0 training, 1 validation, 2 test, 3 unassigned, -1 unsure (`Split.parse` on ASCII)."""
    if not _is_ascii(buf, start, length):
        return -1
    while length > 0 and buf[start] == 32:
        start += 1
        length -= 1
    while length > 0 and buf[start + length - 1] == 32:
        length -= 1
    if _ascii_lower_eq(buf, start, length, S_TRAINING) or _ascii_lower_eq(
        buf, start, length, S_TRAIN
    ):
        return 0
    if _ascii_lower_eq(buf, start, length, S_VALIDATION) or _ascii_lower_eq(
        buf, start, length, S_VAL
    ):
        return 1
    if _ascii_lower_eq(buf, start, length, S_TEST):
        return 2
    return 3


@nb.njit(cache=True, nogil=True)
def _extension(buf: Array, start: int, length: int, mimes: Array, mime_offsets: Array) -> int:
    """The index of the mime type in the table (ASCII, case-insensitive), or -1."""
    for k in range(mime_offsets.shape[0] - 1):
        if _ascii_lower_eq(buf, start, length, mimes[mime_offsets[k] : mime_offsets[k + 1]]):
            return k
    return -1


@nb.njit(cache=True, nogil=True)
def scan_rows(
    buf: Array,
    end: int,
    ctx: Array,
    params: Array,
    wanted: Array,
    full: Array,
    mimes: Array,
    mime_offsets: Array,
    seen: Array,
    class_keys: Array,
    class_ids: Array,
    class_spans: Array,
    images: Array,
    boxes: Array,
    stamps: Array,
    counters: Array,
    rows: Array,
    names: Array,
    coords: Array,
) -> int:
    """Decide the lines of ``buf[ctx[POS]:end]`` until one needs the reference (see module).

    ``buf[end - 1]`` or ``buf[end]`` must be a newline.
    """
    if not newline_ended(buf, end):
        raise ValueError("scan_rows: the data must end with a newline")
    ftype = np.zeros(N_FIELDS, dtype=np.int64)
    fstart = np.zeros(N_FIELDS, dtype=np.int64)
    flen = np.zeros(N_FIELDS, dtype=np.int64)
    fint = np.zeros(N_FIELDS, dtype=np.int64)
    otype = np.zeros((MAX_BOXES + 1, 6), dtype=np.int64)
    ostart = np.zeros(MAX_BOXES + 1, dtype=np.int64)
    olen = np.zeros(MAX_BOXES + 1, dtype=np.int64)
    oval = np.zeros((MAX_BOXES + 1, 4), dtype=np.float64)
    runs = np.zeros(2, dtype=np.int64)
    warned = np.zeros(5, dtype=np.int64)
    stack = new_stack()
    has_wanted = params[HAS_WANTED] != 0
    has_prefix = params[HAS_PREFIX] != 0
    policy = params[POLICY]
    class_capacity = images.shape[1]
    pos = ctx[POS]
    line = ctx[LINE]
    while pos < end:
        if ctx[NROWS] >= rows.shape[0] or ctx[NBOXES] + MAX_BOXES > names.shape[0]:
            ctx[POS] = pos
            ctx[LINE] = line
            return FLUSH
        if 2 * (ctx[NSEEN] + 1) > seen.shape[0] or ctx[NCLASSES] + MAX_BOXES > class_capacity:
            ctx[POS] = pos
            ctx[LINE] = line
            return GROW
        nobj, e = read_line(
            buf,
            pos,
            end,
            wanted,
            has_wanted,
            ftype,
            fstart,
            flen,
            fint,
            otype,
            ostart,
            olen,
            oval,
            runs,
            stack,
        )
        if nobj < 0:
            e = pos
            blank = True
            while e < end:
                c = buf[e]
                if c == 10:
                    break
                if not (c == 32 or c == 9 or c == 13 or c == 11 or c == 12):
                    blank = False
                e += 1
            if blank:
                pos = e + 1 if e < end else e
                line += 1
                continue
        after = e + 1 if e < end else e
        decided = nobj >= 0
        # Recognise the row and choose its run.
        if decided:
            decided = (
                ftype[F_DATA_ROW] == T_OBJ
                and ftype[F_ID] == T_STR
                and flen[F_ID] > 0
                and runs[0] == 1
                and runs[1] == 1
            )
        reject = -1
        split = 3
        mime_ascii = False
        id_hash = np.uint64(0)
        seen_slot = 0
        if decided:
            id_hash = hash_bytes(buf, fstart[F_ID], flen[F_ID])
            seen_slot = table_find(seen, id_hash)
            if seen[seen_slot] == id_hash:
                reject = R_DUPLICATE
        # The image type.
        if decided and reject < 0:
            if ftype[F_MIME] == T_STR:
                mime_ascii = _is_ascii(buf, fstart[F_MIME], flen[F_MIME])
                if not mime_ascii:
                    decided = False
                elif not _ascii_lower_eq(buf, fstart[F_MIME], min(flen[F_MIME], 6), K_IMAGE):
                    reject = R_NOT_IMAGE
            elif ftype[F_MIME] == T_ESC:
                decided = False
        width = height = 0
        if decided and reject < 0:
            if ftype[F_MEDIA] != T_OBJ:
                reject = R_DIMENSIONS
            else:
                wt = ftype[F_WIDTH]
                ht = ftype[F_HEIGHT]
                if wt == T_FLOAT or wt == T_NUMBER or ht == T_FLOAT or ht == T_NUMBER:
                    decided = False
                elif wt == T_INT and ht == T_INT and fint[F_WIDTH] > 0 and fint[F_HEIGHT] > 0:
                    width = fint[F_WIDTH]
                    height = fint[F_HEIGHT]
                else:
                    reject = R_DIMENSIONS
        if decided and reject < 0:
            if ftype[F_SPLIT] == T_STR:
                split = _split_of(buf, fstart[F_SPLIT], flen[F_SPLIT])
                decided = split >= 0
            elif ftype[F_SPLIT] == T_ESC:
                decided = False
            if decided and split == 3:
                if policy == POLICY_AUTO:
                    decided = False
                elif policy == POLICY_SKIP:
                    reject = R_UNASSIGNED
                else:
                    split = policy - 1
        # The boxes.
        for k in range(5):
            warned[k] = 0
        kept = 0
        first_box = ctx[NBOXES]
        if decided and reject < 0:
            w = float(width)
            h = float(height)
            for j in range(nobj):
                bbox = otype[j, 1]
                if bbox == T_ABSENT or bbox == T_NULL:
                    warned[W_UNSUPPORTED] += 1
                    continue
                if bbox != T_OBJ:
                    warned[W_INVALID] += 1
                    continue
                numbers = True
                known = True
                for k in range(2, 6):
                    t = otype[j, k]
                    if t == T_NUMBER:
                        known = False
                    elif t != T_INT and t != T_FLOAT:
                        numbers = False
                if not numbers:
                    warned[W_INVALID] += 1
                    continue
                if not known or otype[j, 0] != T_STR or olen[j] == 0:
                    decided = False  # big numbers, or the name comes from "value": the reference
                    break
                left = oval[j, 0]
                top = oval[j, 1]
                x1 = left + oval[j, 2]
                y1 = top + oval[j, 3]
                cx0 = 0.0 if left < 0 else left
                cy0 = 0.0 if top < 0 else top
                cx1 = w if x1 > w else x1
                cy1 = h if y1 > h else y1
                cw = cx1 - cx0
                ch = cy1 - cy0
                if not (cw > 0 and ch > 0):
                    warned[W_DEGENERATE] += 1
                    continue
                if cw * 100.0 < w or ch * 100.0 < h:
                    warned[W_TOO_SMALL] += 1
                    continue
                if cx0 != left or cy0 != top or cx1 != x1 or cy1 != y1:
                    warned[W_CLIPPED] += 1
                b = first_box + kept
                names[b, 0] = ostart[j]
                names[b, 1] = olen[j]
                coords[4 * b] = cx0 / w
                coords[4 * b + 1] = cy0 / h
                coords[4 * b + 2] = cx1 / w
                coords[4 * b + 3] = cy1 / h
                kept += 1
            if decided and kept == 0:
                reject = R_NO_BOXES
        # The image URI.
        uri_kind = URI_ROW_DATA
        ext = -1
        if decided and reject < 0:
            if has_prefix:
                uri_kind = URI_PREFIX
                if ftype[F_MIME] == T_STR and mime_ascii:
                    ext = _extension(buf, fstart[F_MIME], flen[F_MIME], mimes, mime_offsets)
                decided = ext >= 0  # else the extension comes from row_data: the reference
            elif ftype[F_ROW_DATA] == T_STR:
                if not (flen[F_ROW_DATA] >= 5 and _eq(buf, fstart[F_ROW_DATA], 5, _GS)):
                    reject = R_NOT_IN_GCS
            elif ftype[F_ROW_DATA] == T_ESC:
                decided = False
            else:
                reject = R_NOT_IN_GCS
        # Examples still wanted: the reference writes them.
        if decided and reject >= 0 and not full[reject]:
            decided = False
        if decided:
            for k in range(5):
                if warned[k] and not full[WARNED - REJECTED + k]:
                    decided = False
        if not decided:
            ctx[STOP_START] = pos
            ctx[STOP_END] = after
            ctx[STOP_LINE] = line + 1
            ctx[POS] = after
            ctx[LINE] = line + 1
            return FALLBACK
        # Commit the row.
        counters[READ] += 1
        if seen[seen_slot] != id_hash:
            seen[seen_slot] = id_hash
            ctx[NSEEN] += 1
        for k in range(5):
            counters[WARNED + k] += warned[k]
        if reject >= 0:
            counters[REJECTED + reject] += 1
        else:
            counters[WRITTEN] += 1
            counters[BOXES] += kept
            r = ctx[NROWS]
            if uri_kind == URI_PREFIX:
                rows[r, URI_START] = fstart[F_ID]
                rows[r, URI_LEN] = flen[F_ID]
            else:
                rows[r, URI_START] = fstart[F_ROW_DATA]
                rows[r, URI_LEN] = flen[F_ROW_DATA]
            rows[r, URI_KIND] = uri_kind
            rows[r, EXT] = ext
            rows[r, SPLIT] = split
            rows[r, BOX_FIRST] = first_box
            rows[r, NBOX] = kept
            ctx[NROWS] = r + 1
            ctx[NBOXES] = first_box + kept
            out = _ROW_BYTES + rows[r, URI_LEN]
            serial = ctx[SERIAL] + 1
            ctx[SERIAL] = serial
            for b in range(first_box, first_box + kept):
                out += _BOX_BYTES + names[b, 1]
                h64 = hash_bytes(buf, names[b, 0], names[b, 1])
                slot = table_find(class_keys, h64)
                if class_keys[slot] != h64:
                    class_keys[slot] = h64
                    class_ids[slot] = ctx[NCLASSES]
                    class_spans[ctx[NCLASSES], 0] = names[b, 0]
                    class_spans[ctx[NCLASSES], 1] = names[b, 1]
                    ctx[NCLASSES] += 1
                cls = class_ids[slot]
                boxes[split, cls] += 1
                if stamps[cls] != serial:
                    stamps[cls] = serial
                    images[split, cls] += 1
            ctx[OUT_BYTES] += out
        pos = after
        line += 1
    ctx[POS] = pos
    ctx[LINE] = line
    return END


_HEAD = np.frombuffer(b'{"imageGcsUri":"', dtype=np.uint8).copy()
_BOXES = np.frombuffer(b'","boundingBoxAnnotations":[', dtype=np.uint8).copy()
_NAME = np.frombuffer(b'{"displayName":"', dtype=np.uint8).copy()
_X0 = np.frombuffer(b'","xMin":', dtype=np.uint8).copy()
_Y0 = np.frombuffer(b',"yMin":', dtype=np.uint8).copy()
_X1 = np.frombuffer(b',"xMax":', dtype=np.uint8).copy()
_Y1 = np.frombuffer(b',"yMax":', dtype=np.uint8).copy()
_SPLIT = np.frombuffer(
    b'],"dataItemResourceLabels":{"aiplatform.googleapis.com/ml_use":"', dtype=np.uint8
).copy()
_TRAINING = np.frombuffer(b'training"}}\n', dtype=np.uint8).copy()
_VALIDATION = np.frombuffer(b'validation"}}\n', dtype=np.uint8).copy()
_TEST = np.frombuffer(b'test"}}\n', dtype=np.uint8).copy()


@nb.njit(cache=True, nogil=True, inline="always")
def _put(out: Array, o: int, src: Array, start: int, length: int) -> int:
    k = 0
    while k < length:  # a plain loop: short copies, no vector set-up
        out[o + k] = src[start + k]
        k += 1
    return o + length


@nb.njit(cache=True, nogil=True)
def assemble(
    buf: Array,
    rows: Array,
    nrows: int,
    names: Array,
    coord_text: Array,
    prefix: Array,
    exts: Array,
    ext_offsets: Array,
    out: Array,
) -> int:
    """Write the kept rows as import lines into ``out``; the number of bytes written."""
    o = 0
    t = 1  # after the "[" of coord_text
    for r in range(nrows):
        o = _put(out, o, _HEAD, 0, _HEAD.shape[0])
        if rows[r, URI_KIND] == URI_PREFIX:
            o = _put(out, o, prefix, 0, prefix.shape[0])
            o = _put(out, o, buf, rows[r, URI_START], rows[r, URI_LEN])
            ext = rows[r, EXT]
            o = _put(out, o, exts, ext_offsets[ext], ext_offsets[ext + 1] - ext_offsets[ext])
        else:
            o = _put(out, o, buf, rows[r, URI_START], rows[r, URI_LEN])
        o = _put(out, o, _BOXES, 0, _BOXES.shape[0])
        first = rows[r, BOX_FIRST]
        for b in range(first, first + rows[r, NBOX]):
            if b > first:
                out[o] = 44
                o += 1
            o = _put(out, o, _NAME, 0, _NAME.shape[0])
            o = _put(out, o, buf, names[b, 0], names[b, 1])
            for k in range(4):
                if k == 0:
                    o = _put(out, o, _X0, 0, _X0.shape[0])
                elif k == 1:
                    o = _put(out, o, _Y0, 0, _Y0.shape[0])
                elif k == 2:
                    o = _put(out, o, _X1, 0, _X1.shape[0])
                else:
                    o = _put(out, o, _Y1, 0, _Y1.shape[0])
                c = coord_text[t]
                while c != 44 and c != 93:
                    out[o] = c
                    o += 1
                    t += 1
                    c = coord_text[t]
                t += 1
            out[o] = 125
            o += 1
        o = _put(out, o, _SPLIT, 0, _SPLIT.shape[0])
        split = rows[r, SPLIT]
        if split == 0:
            o = _put(out, o, _TRAINING, 0, _TRAINING.shape[0])
        elif split == 1:
            o = _put(out, o, _VALIDATION, 0, _VALIDATION.shape[0])
        else:
            o = _put(out, o, _TEST, 0, _TEST.shape[0])
    return o
