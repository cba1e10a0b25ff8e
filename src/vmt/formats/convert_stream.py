"""``vmt convert``'s fast path: the export read in chunks of bytes, decided by a numba kernel.

The kernel (`vmt.formats.export_kernel.scan_rows`) decides the usual rows without building
Python objects and hands every other line to the reference (`labelbox_export.RowReader` and
`labelbox_to_vertex.RowWriter`, the code behind `convert_export`), in file order, sharing one
table of data row ids and one `ConversionStats`. The output and the report are byte for byte
those of `convert_export` (tests run both on the same files). Memory stays flat: one chunk of
input, one batch of output, hash tables of ids (8 bytes per slot, at most half full) and classes.

numba compiles the kernel once per install (cached on disk), which costs seconds: the CLI takes
this path for large files only.
"""

from __future__ import annotations

import mmap
import os
import stat
from collections.abc import Callable
from typing import BinaryIO, Protocol

import numpy as np
import orjson

from vmt.domain import Split
from vmt.formats import export_scan as scan
from vmt.formats.conversion_stats import ConversionStats
from vmt.formats.export_kernel import assemble, scan_rows
from vmt.formats.image_header import EXTENSIONS
from vmt.formats.json_scan import table_add, table_rehash
from vmt.formats.labelbox_export import (
    UNASSIGNED_POLICIES,
    ExportOptions,
    ExportRow,
    RowReader,
)
from vmt.formats.labelbox_to_vertex import RowWriter
from vmt.reasons import BOX_WARNINGS as WARNING_CODES
from vmt.reasons import EXPORT_ROW_CHECKS as REJECTION_CODES

CHUNK_BYTES = 8 << 20
_ROWS_PER_BATCH = 256
"""Rows assembled at a time, while their input is still in the CPU cache."""
_WRITE_BYTES = 1 << 20
"""Output is written in blocks of about this size: small enough to be still in the CPU cache when
the kernel copies it (8 MB blocks cost the kernel 4-5x the system time), few enough writes."""
_BOXES_PER_BATCH = 16 * _ROWS_PER_BATCH
_SPLITS = (Split.TRAINING, Split.VALIDATION, Split.TEST)


class Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


class HashedIds:
    """The data row ids seen so far, as 64-bit hashes of their UTF-8 bytes (shared by the
    kernel and the reference, so a duplicate is found whichever path saw the first one)."""

    def __init__(self, ctx: np.ndarray, slots: int = 1 << 16) -> None:
        self.keys = np.zeros(slots, dtype=np.uint64)
        self._ctx = ctx

    def add(self, key: str) -> bool:
        self.reserve(1)
        added = bool(table_add(self.keys, np.frombuffer(key.encode("utf-8"), dtype=np.uint8)))
        self._ctx[scan.NSEEN] += added
        return added

    def reserve(self, more: int) -> None:
        """Grow (double) until ``more`` ids fit with the table at most half full."""
        while 2 * (int(self._ctx[scan.NSEEN]) + more) > self.keys.shape[0]:
            keys = np.zeros(2 * self.keys.shape[0], dtype=np.uint64)
            # A set: no values; the keys' own memory stands in for them.
            table_rehash(self.keys, self.keys.view(np.int64), keys, keys.view(np.int64))
            self.keys = keys


class _Classes:
    """Class names by id, and per split the images and boxes of each (kernel-counted rows)."""

    def __init__(self, capacity: int = 1024) -> None:
        self.names: list[str] = []
        self.keys = np.zeros(2 * capacity, dtype=np.uint64)
        self.ids = np.zeros(2 * capacity, dtype=np.int64)
        self.spans = np.zeros((capacity, 2), dtype=np.int64)
        self.images = np.zeros((3, capacity), dtype=np.int64)
        self.boxes = np.zeros((3, capacity), dtype=np.int64)
        self.stamps = np.zeros(capacity, dtype=np.int64)

    def grow(self) -> None:
        capacity = 2 * self.spans.shape[0]
        keys = np.zeros(2 * capacity, dtype=np.uint64)
        ids = np.zeros(2 * capacity, dtype=np.int64)
        table_rehash(self.keys, self.ids, keys, ids)
        self.keys, self.ids = keys, ids
        self.spans = _grown(self.spans, capacity)
        self.images = _grown(self.images.T, capacity).T.copy()
        self.boxes = _grown(self.boxes.T, capacity).T.copy()
        self.stamps = _grown(self.stamps, capacity)

    def take_names(self, data: bytearray | mmap.mmap, count: int) -> None:
        """Read the names of the classes the kernel met for the first time in ``data``."""
        for k in range(len(self.names), count):
            start, length = self.spans[k]
            self.names.append(data[start : start + length].decode("utf-8"))


def _grown(array: np.ndarray, rows: int) -> np.ndarray:
    bigger = np.zeros((rows, *array.shape[1:]), dtype=array.dtype)
    bigger[: array.shape[0]] = array
    return bigger


def convert_stream(
    source: Readable,
    out: BinaryIO,
    *,
    model_run_id: str | None = None,
    unassigned: str = "skip",
    image_uri_prefix: str | None = None,
    stats: ConversionStats | None = None,
    progress: Callable[[int], None] | None = None,
    on_fallback: Callable[[int], None] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> ConversionStats:
    """`labelbox_to_vertex.convert_export` on a binary stream, with the numba kernel.

    ``progress`` is called with the number of bytes consumed after each chunk, ``on_fallback``
    with the number of each line the reference decided.
    """
    stats = ConversionStats() if stats is None else stats
    options = ExportOptions(model_run_id=model_run_id, unassigned=unassigned)
    converter = _Converter(out, stats, options, image_uri_prefix or None, on_fallback)
    fileno = _regular_file(source)
    if fileno is not None:
        _feed_mapped(converter, fileno, chunk_bytes, progress)
    else:
        _feed_read(converter, source, chunk_bytes, progress)
    converter.finish()
    return stats


def _regular_file(source: Readable) -> int | None:
    """The file descriptor of ``source`` if it is a regular file (it can be mapped)."""
    try:
        fileno: int = source.fileno()  # type: ignore[attr-defined]
        return fileno if stat.S_ISREG(os.fstat(fileno).st_mode) else None
    except (AttributeError, OSError, ValueError):
        return None


def _feed_mapped(
    converter: _Converter,
    fileno: int,
    chunk_bytes: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Map the file a window at a time (no copy into our buffers; the pages of one window
    only, so memory stays flat) and feed the whole lines of each window."""
    size = os.fstat(fileno).st_size
    start = 0  # the first line not yet fed
    while start < size:
        offset = start - start % mmap.ALLOCATIONGRANULARITY
        length = min(size - offset, (start - offset) + chunk_bytes)
        with mmap.mmap(fileno, length, offset=offset, access=mmap.ACCESS_READ) as window:
            window.madvise(mmap.MADV_SEQUENTIAL)
            end = window.rfind(b"\n", start - offset) + 1
            if end == 0 and offset + length < size:  # a line longer than a window
                chunk_bytes *= 2
                continue
            if end == 0:  # the last line, without a newline: a copy with one
                tail = bytearray(window[start - offset :]) + b"\n"
                converter.feed(tail, len(tail) - 1)
                end = length
            else:
                converter.feed(window, end, start=start - offset)
        start = offset + end
        if progress is not None:
            progress(start)


def _feed_read(
    converter: _Converter,
    source: Readable,
    chunk_bytes: int,
    progress: Callable[[int], None] | None,
) -> None:
    buffer = bytearray(chunk_bytes + 1)  # + 1: room for a newline after the last line
    held = 0  # bytes of an unfinished line kept at the front of the buffer
    consumed = 0
    while True:
        if held == len(buffer) - 1:  # a line longer than the buffer: a bigger one
            buffer = buffer + bytearray(len(buffer))
        read = source.readinto(memoryview(buffer)[held:-1]) or 0
        size = held + read
        if read:
            cut = buffer.rfind(b"\n", 0, size) + 1
            if cut == 0:
                held = size
                continue
        else:
            cut = size
            buffer[size] = 10  # the kernel's scans stop at a newline
        converter.feed(buffer, cut)
        consumed += cut
        if progress is not None:
            progress(consumed)
        held = size - cut
        buffer[:held] = buffer[cut:size]
        if not read:
            break


class _Converter:
    def __init__(
        self,
        out: BinaryIO,
        stats: ConversionStats,
        options: ExportOptions,
        prefix: str | None,
        on_fallback: Callable[[int], None] | None = None,
    ) -> None:
        self.out = out
        self.on_fallback = on_fallback
        self.stats = stats
        self.ctx = np.zeros(scan.CTX_SIZE, dtype=np.int64)
        self.seen = HashedIds(self.ctx)
        self.reader = RowReader(options, stats, seen=self.seen)
        self.writer = RowWriter(out, stats, prefix)
        self.classes = _Classes()
        self.params = np.zeros(3, dtype=np.int64)
        self.params[scan.HAS_PREFIX] = prefix is not None
        self.params[scan.POLICY] = UNASSIGNED_POLICIES.index(options.unassigned)
        self.params[scan.HAS_WANTED] = options.model_run_id is not None
        self.wanted = np.frombuffer((options.model_run_id or "").encode(), dtype=np.uint8)
        self.codes = REJECTION_CODES + WARNING_CODES
        self.full = np.zeros(len(self.codes), dtype=np.bool_)
        self.counters = np.zeros(scan.COUNTERS_SIZE, dtype=np.int64)
        mimes = list(EXTENSIONS)
        self.mimes, self.mime_offsets = _packed([m.encode() for m in mimes])
        self.exts, self.ext_offsets = _packed([EXTENSIONS[m].encode() for m in mimes])
        self.prefix = np.frombuffer(orjson.dumps(prefix or "")[1:-1], dtype=np.uint8)
        self.rows = np.zeros((_ROWS_PER_BATCH, scan.ROW_COLUMNS), dtype=np.int64)
        self.names = np.zeros((_BOXES_PER_BATCH, 2), dtype=np.int64)
        self.coords = np.zeros(4 * _BOXES_PER_BATCH, dtype=np.float64)
        self.out_buffer = np.zeros(2 * _WRITE_BYTES, dtype=np.uint8)
        self.pending = 0
        """Bytes of ``out_buffer`` assembled but not yet written."""

    def feed(self, data: bytearray | mmap.mmap, end: int, *, start: int = 0) -> None:
        """Convert the lines of ``data[start:end]`` (whole lines), in order."""
        buf = np.frombuffer(data, dtype=np.uint8)
        ctx = self.ctx
        ctx[scan.POS] = start
        self._update_full()
        classes = self.classes
        while True:
            status = scan_rows(
                buf,
                end,
                ctx,
                self.params,
                self.wanted,
                self.full,
                self.mimes,
                self.mime_offsets,
                self.seen.keys,
                classes.keys,
                classes.ids,
                classes.spans,
                classes.images,
                classes.boxes,
                classes.stamps,
                self.counters,
                self.rows,
                self.names,
                self.coords,
            )
            classes.take_names(data, int(ctx[scan.NCLASSES]))
            if status == scan.END:
                break
            if status == scan.GROW:
                self.seen.reserve(1)
                if ctx[scan.NCLASSES] + scan.MAX_BOXES > classes.spans.shape[0]:
                    classes.grow()
                continue
            self._flush(buf)
            if status == scan.FALLBACK:
                self._write_pending()
                line = bytes(data[ctx[scan.STOP_START] : ctx[scan.STOP_END]])
                number = int(ctx[scan.STOP_LINE])
                if self.on_fallback is not None:
                    self.on_fallback(number)
                row = self.reader.read_line(line, number)
                if type(row) is ExportRow:
                    self.writer.write(row)
                self._update_full()
        self._flush(buf)
        self._count()

    def finish(self) -> None:
        self._write_pending()
        classes = self.classes
        for index, split in enumerate(_SPLITS):
            images = classes.images[index]
            boxes = classes.boxes[index]
            for cls in np.flatnonzero(images):
                self.stats.add_class_counts(
                    split, classes.names[cls], int(images[cls]), int(boxes[cls])
                )

    def _flush(self, buf: np.ndarray) -> None:
        ctx = self.ctx
        nrows = int(ctx[scan.NROWS])
        if nrows == 0:
            return
        nboxes = int(ctx[scan.NBOXES])
        text = orjson.dumps(self.coords[: 4 * nboxes], option=orjson.OPT_SERIALIZE_NUMPY)
        need = int(ctx[scan.OUT_BYTES]) + nrows * (self.prefix.shape[0] + 16)
        if self.pending + need > self.out_buffer.shape[0]:
            self._write_pending()
            if need > self.out_buffer.shape[0]:
                self.out_buffer = np.zeros(need, dtype=np.uint8)
        size = assemble(
            buf,
            self.rows,
            nrows,
            self.names,
            np.frombuffer(text, dtype=np.uint8),
            self.prefix,
            self.exts,
            self.ext_offsets,
            self.out_buffer[self.pending :],
        )
        self.pending += size
        ctx[scan.NROWS] = ctx[scan.NBOXES] = ctx[scan.OUT_BYTES] = 0
        if self.pending >= _WRITE_BYTES:
            self._write_pending()

    def _write_pending(self) -> None:
        if self.pending:
            self.out.write(self.out_buffer[: self.pending].data)
            self.pending = 0

    def _count(self) -> None:
        """Move the kernel's counters into the stats (so progress shows them)."""
        counters = self.counters
        stats = self.stats
        stats.rows_read += int(counters[scan.READ])
        stats.rows_written += int(counters[scan.WRITTEN])
        stats.boxes_written += int(counters[scan.BOXES])
        for k, code in enumerate(REJECTION_CODES):
            stats.add_counts(code, int(counters[scan.REJECTED + k]), warning=False)
        for k, code in enumerate(WARNING_CODES):
            stats.add_counts(code, int(counters[scan.WARNED + k]), warning=True)
        counters[:] = 0

    def _update_full(self) -> None:
        for k, code in enumerate(self.codes):
            self.full[k] = self.stats.examples_full(code)


def _packed(items: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(item) for item in items])
    return np.frombuffer(b"".join(items), dtype=np.uint8).copy(), offsets
