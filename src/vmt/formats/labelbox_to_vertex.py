"""The core of ``vmt convert``: a Labelbox export streamed into a Vertex import file.

Constant memory: one row at a time from the parser to the output stream. Adds the last check
of the conversion rules, ``not_in_gcs``: without an image URI prefix, Vertex can only read
images whose ``row_data`` already names a Cloud Storage object (``gs://`` or its https URLs,
`vmt.formats.image_uri.gcs_uri`), written as ``gs://``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from vmt.durable_files import atomic_writer, write_atomic
from vmt.errors import InputError
from vmt.formats.conversion_stats import ConversionStats
from vmt.formats.export_options import ExportOptions
from vmt.formats.json_records import Record, read_records
from vmt.formats.labelbox_export import ExportRow, parse_export_rows
from vmt.formats.split_policy import choose_unassigned
from vmt.formats.vertex import encode_import_line, image_uri, limit_problems
from vmt.reasons import Reason


@dataclass(frozen=True, slots=True)
class ConversionOutcome:
    """What `convert_file` did: its counts, the Vertex limits the written rows break,
    ``failure``, why no file was written (None when the import file was written), and ``note``,
    the split policy chosen for the user (`vmt.formats.split_policy`; None when they named one
    or the default ``skip`` held)."""

    stats: ConversionStats
    problems: list[str]
    failure: str | None
    note: str | None = None


class _NothingToCommit(Exception):
    """Leaves the output file as it was (the atomic write is abandoned)."""


def convert_file(
    export: Path,
    output: Path,
    *,
    model_run_id: str | None = None,
    unassigned: str | None = "skip",
    image_uri_prefix: str | None = None,
    strict: bool = False,
    report: Path | None = None,
    stats: ConversionStats | None = None,
    progress: Callable[[int], None] | None = None,
) -> ConversionOutcome:
    """``vmt convert``: the export file ``export`` (any shape `read_records` reads) into the
    Vertex import file ``output``, streaming. ``output`` is replaced atomically, and only when
    at least one row was written (and, with ``strict``, no Vertex limit is broken); otherwise
    it is left as it was and the outcome's ``failure`` names the real blocker. ``report``
    receives the counts, rejections, warnings and examples as JSON. ``progress`` is called with
    the bytes read so far. ``unassigned`` None: the policy `choose_unassigned` picks from the
    export (a first pass that stops at the first row with a split). Raises ``InputError`` when
    a file cannot be read or written."""
    stats = ConversionStats() if stats is None else stats
    problems: list[str] = []
    failure: str | None = None
    try:
        choice = choose_unassigned(unassigned, read_records(export), model_run_id)
        try:
            with atomic_writer(output) as sink:
                convert_export(
                    read_records(export, progress),
                    sink,
                    model_run_id=model_run_id,
                    unassigned=choice.policy,
                    image_uri_prefix=image_uri_prefix,
                    stats=stats,
                )
                problems = limit_problems(
                    stats.classes, images=stats.rows_written, boxes=stats.boxes_written
                )
                if stats.rows_written == 0:
                    failure = f"no rows written: {stats.blocker()}"
                elif strict and problems:
                    failure = f"--strict: {'; '.join(problems)}"
                if failure is not None:
                    raise _NothingToCommit
        except _NothingToCommit:
            pass
        if report is not None:
            write_atomic(report, orjson.dumps(stats.to_json(), option=orjson.OPT_INDENT_2))
    except OSError as exc:
        raise InputError(f"{exc.filename or export}: {exc.strerror or exc}") from exc
    return ConversionOutcome(stats, problems, failure, choice.note)


def convert_export(
    records: Iterable[Record],
    out: BinaryIO,
    *,
    model_run_id: str | None = None,
    unassigned: str = "skip",
    image_uri_prefix: str | None = None,
    stats: ConversionStats | None = None,
) -> ConversionStats:
    """Write one Vertex import line per usable export row to ``out``, in input order.

    ``records`` come from `vmt.formats.json_records` (`read_records` of a file, or
    `ndjson_records` of lines at hand)."""
    stats = ConversionStats() if stats is None else stats
    options = ExportOptions(model_run_id=model_run_id, unassigned=unassigned)
    write = RowWriter(out, stats, image_uri_prefix).write
    for row in parse_export_rows(records, options, stats):
        if type(row) is ExportRow:
            write(row)
    return stats


class RowWriter:
    """The last step for a row that passed the parser: its image URI (or ``not_in_gcs``),
    its import line written to ``out``, and its counts."""

    def __init__(self, out: BinaryIO, stats: ConversionStats, image_uri_prefix: str | None):
        self._write = out.write
        self._stats = stats
        self._prefix = image_uri_prefix or None

    def write(self, row: ExportRow) -> None:
        uri = image_uri(row.data_row_id, row.row_data, row.mime_type, prefix=self._prefix)
        if uri is None:
            detail = (
                f"row_data is not a Cloud Storage object ({_scheme(row.row_data)}: neither gs:// "
                "nor https://storage.googleapis.com/...); pass --image-uri-prefix"
            )
            self._stats.reject(Reason.NOT_IN_GCS, row.line, row.data_row_id, detail)
            return
        assert row.width is not None and row.height is not None  # require_dimensions
        self._write(encode_import_line(uri, row.width, row.height, row.split, row.boxes))
        self._stats.record_written(row.split, row.boxes)


def _scheme(row_data: str | None) -> str:
    if row_data is None:
        return "no row_data"
    scheme, sep, _ = row_data.partition("://")
    return f"{scheme}://..." if sep else "a path"
