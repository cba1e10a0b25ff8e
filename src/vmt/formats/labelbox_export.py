"""Streaming parser of Labelbox exports: one data row per record, constant memory.

The file may be NDJSON, a JSON array (however laid out), gzip-compressed, with a byte-order mark
or CRLF line ends: `vmt.formats.json_records` reads them all.

Reads model-run export v2 rows (``experiments.<model>.runs.<run>``), project export v2 rows
(``projects.<id>.labels``) and legacy export v1 rows (``DataRow ID``, ``Labeled Data``,
``Data Split``, ``Media Attributes``, ``Label.objects[].bbox``). Every non-blank line is counted
and ends up either as a row (`Sample`, or `ExportRow` in the convert hot path) or as a
`Rejection` with exactly one reason code; the checks run in this order:

    malformed_json, unrecognized_row, ambiguous_run, duplicate_row, not_an_image,
    missing_dimensions, unassigned_split, too_many_boxes, unlabelled_row, no_boxes

(``unlabelled_row`` only for ground truth, `ExportOptions.require_label`: the rejection's
``extra["row"]`` is the row as a `Sample`, so predictions on it can still be told apart.)

(``vmt convert`` adds ``not_in_gcs`` after them, see `vmt.formats.labelbox_to_vertex`).
The box rules (clip, drop, warn) live in `vmt.formats.export_boxes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from vmt.domain import Box, Rejection, Sample, Split
from vmt.formats.conversion_stats import ConversionStats, PixelBox
from vmt.formats.export_boxes import read_boxes
from vmt.formats.export_options import ExportOptions, split_for_unassigned
from vmt.formats.image_header import normalize_mime
from vmt.formats.json_records import Malformed, Record, ndjson_records, read_records
from vmt.formats.seen_ids import SeenIds
from vmt.formats.vertex import MAX_BOXES_PER_IMAGE
from vmt.reasons import Reason

__all__ = [
    "ConversionStats",
    "ExportRow",
    "IdSet",
    "RowReader",
    "label_sections",
    "parse_export_rows",
    "parse_lines",
    "parse_records",
    "read_samples",
]


class ExportRow(NamedTuple):
    """A row that passed every parser check, before it is counted as written.

    The convert hot path works on these (plain tuples, no per-box objects); whoever consumes
    one must call ``stats.record_written(row.split, row.boxes)`` or ``stats.reject(...)``.
    """

    line: int
    data_row_id: str
    global_key: str | None
    row_data: str | None
    mime_type: str | None
    width: int | None
    height: int | None
    split: Split
    boxes: list[PixelBox]

    def to_sample(self) -> Sample:
        return Sample(
            data_row_id=self.data_row_id,
            image_uri=self.row_data or "",
            width=self.width,
            height=self.height,
            split=self.split,
            boxes=tuple(Box(*box) for box in self.boxes),
            mime_type=self.mime_type,
            global_key=self.global_key,
            line=self.line,
        )


_new_row = tuple.__new__
"""Builds an `ExportRow` without the generated ``__new__`` (a third of the cost)."""


def read_samples(
    path: Path, options: ExportOptions, stats: ConversionStats | None = None
) -> Iterator[Sample | Rejection]:
    """Stream the samples (and rejections) of an export file, in file order.

    Raises ``InputError`` when the file cannot be read or is not JSON in any accepted shape.
    """
    yield from parse_records(read_records(path), options, stats)


def parse_lines(
    lines: Iterable[bytes], options: ExportOptions, stats: ConversionStats | None = None
) -> Iterator[Sample | Rejection]:
    """`read_samples` over NDJSON lines already at hand (line numbers count from 1)."""
    yield from parse_records(ndjson_records(lines), options, stats)


def parse_records(
    records: Iterable[Record], options: ExportOptions, stats: ConversionStats | None = None
) -> Iterator[Sample | Rejection]:
    """`read_samples` over records already at hand."""
    stats = ConversionStats() if stats is None else stats
    for item in parse_export_rows(records, options, stats):
        if type(item) is ExportRow:
            stats.record_written(item.split, item.boxes)
            yield item.to_sample()
        else:
            assert isinstance(item, Rejection)
            yield item


def parse_export_rows(
    records: Iterable[Record], options: ExportOptions, stats: ConversionStats
) -> Iterator[ExportRow | Rejection]:
    """The parser itself: rows that passed every check (not yet counted as written) or
    rejections (already counted)."""
    read_record = RowReader(options, stats).read_record
    for line, value in records:
        yield read_record(value, line)


class IdSet(Protocol):
    def add(self, key: str) -> bool:
        """Remember ``key``; True if it was new, False if it had been seen."""
        ...


class RowReader:
    """The checks after JSON parsing, in order. Holds the ids seen so far."""

    def __init__(
        self, options: ExportOptions, stats: ConversionStats, seen: IdSet | None = None
    ) -> None:
        self.options = options
        self.stats = stats
        self.seen: IdSet = SeenIds() if seen is None else seen
        self.model_run_id = options.model_run_id
        self.require_dimensions = options.require_dimensions
        self.require_boxes = options.require_boxes
        self.splits: dict[str, Split] = {}
        """`Split.parse` of the split spellings met so far (a handful)."""

    def read_record(self, value: Any, line: int) -> ExportRow | Rejection:
        """One record, counted as read: `parse_export_rows` for a single record."""
        self.stats.rows_read += 1
        if type(value) is Malformed:
            return self.stats.reject(Reason.MALFORMED_JSON, line, None, value.detail)
        return self.read(value, line)

    def read(self, obj: Any, line: int) -> ExportRow | Rejection:
        if type(obj) is not dict:
            return self._reject(Reason.UNRECOGNIZED_ROW, line, None, f"not a JSON object: {obj!r}")
        data_row = obj.get("data_row")
        if data_row is not None:
            return self._read_v2(obj, data_row, line)
        if "DataRow ID" in obj:
            return self._read_v1(obj, line)
        return self._reject(Reason.UNRECOGNIZED_ROW, line, None, "no data_row.id or DataRow ID")

    def _read_v2(self, obj: dict[str, Any], data_row: Any, line: int) -> ExportRow | Rejection:
        data_row_id = data_row.get("id") if type(data_row) is dict else None
        if type(data_row_id) is not str or not data_row_id:
            return self._reject(Reason.UNRECOGNIZED_ROW, line, None, "no data_row.id")
        section: Any = None
        experiments = obj.get("experiments")
        if self.model_run_id is None and type(experiments) is dict and len(experiments) == 1:
            # The usual shape, one model and one run: no list of sections to build.
            (model,) = experiments.values()
            runs = model.get("runs") if type(model) is dict else None
            if type(runs) is dict and len(runs) == 1:
                (section,) = runs.values()
        if type(section) is not dict:
            sections = label_sections(obj)
            if not sections and self.options.rows_without_labels:
                sections = [("", {})]
            if not sections:
                detail = "no model run (experiments) or project labels in the row"
                return self._reject(Reason.UNRECOGNIZED_ROW, line, data_row_id, detail)
            section = self._select(sections, line, data_row_id)
            if type(section) is not dict:
                assert isinstance(section, Rejection)
                return section
        objects = None
        labels = section.get("labels")
        if type(labels) is list and labels and type(labels[0]) is dict:
            annotations = labels[0].get("annotations")
            if type(annotations) is dict:
                objects = annotations.get("objects")
        media = obj.get("media_attributes")
        mime = media.get("mime_type") if type(media) is dict else None
        row = self._finish(
            line,
            data_row_id,
            data_row.get("global_key"),
            data_row.get("row_data"),
            media,
            mime,
            section.get("split"),
            objects,
            "bounding_box",
            "name",
        )
        labelled = type(labels) is list and len(labels) > 0
        if self.options.require_label and not labelled and type(row) is ExportRow:
            return self._unlabelled(row, section)
        return row

    def _unlabelled(self, row: ExportRow, section: dict[str, Any]) -> Rejection:
        details = section.get("project_details")
        status = details.get("workflow_status") if type(details) is dict else None
        where = f" (workflow status {status})" if type(status) is str else ""
        detail = f"data row {row.data_row_id} has no label{where}: not ground truth"
        rejection = self._reject(Reason.UNLABELLED_ROW, row.line, row.data_row_id, detail)
        return replace(rejection, extra={"row": row.to_sample()})

    def _read_v1(self, obj: dict[str, Any], line: int) -> ExportRow | Rejection:
        data_row_id = obj["DataRow ID"]
        if type(data_row_id) is not str or not data_row_id:
            return self._reject(Reason.UNRECOGNIZED_ROW, line, None, "no DataRow ID")
        label = obj.get("Label")
        if type(label) is not dict:
            return self._reject(Reason.UNRECOGNIZED_ROW, line, data_row_id, "no Label in the row")
        media = obj.get("Media Attributes")
        mime = None
        if type(media) is dict:
            mime = media.get("mimeType", media.get("mime_type"))
        return self._finish(
            line,
            data_row_id,
            obj.get("Global Key"),
            obj.get("Labeled Data"),
            media,
            mime,
            obj.get("Data Split"),
            label.get("objects"),
            "bbox",
            "title",
        )

    def _select(
        self, sections: list[tuple[str, Any]], line: int, data_row_id: str
    ) -> dict[str, Any] | Rejection:
        wanted = self.model_run_id
        if wanted is not None:
            for section_id, section in sections:
                if section_id == wanted and type(section) is dict:
                    return section
            detail = f"model run {wanted} not in the row"
            return self._reject(Reason.UNRECOGNIZED_ROW, line, data_row_id, detail)
        if len(sections) > 1:
            ids = ", ".join(section_id for section_id, _ in sections[:5])
            detail = f"{len(sections)} runs ({ids}); choose one with --model-run-id"
            return self._reject(Reason.AMBIGUOUS_RUN, line, data_row_id, detail)
        section = sections[0][1]
        if type(section) is not dict:
            return self._reject(Reason.UNRECOGNIZED_ROW, line, data_row_id, "run is not an object")
        return section

    def _finish(
        self,
        line: int,
        data_row_id: str,
        global_key: Any,
        row_data: Any,
        media: Any,
        mime: Any,
        raw_split: Any,
        objects: Any,
        box_key: str,
        name_key: str,
    ) -> ExportRow | Rejection:
        if not self.seen.add(data_row_id):
            return self._reject(Reason.DUPLICATE_ROW, line, data_row_id, "data row id seen before")
        if type(objects) is not list:
            objects = []
        if type(mime) is str:
            mime = normalize_mime(mime)
            if not mime.startswith("image/"):
                self._count_box_rows(objects, box_key)
                return self._reject(Reason.NOT_AN_IMAGE, line, data_row_id, f"mime type {mime}")
        else:
            mime = None
        width = height = None
        if type(media) is dict:
            width = media.get("width")
            height = media.get("height")
            if not (type(width) is int and width > 0 and type(height) is int and height > 0):
                width = _dimension(width)
                height = _dimension(height)
        if width is None or height is None:
            if self.require_dimensions:
                self._count_box_rows(objects, box_key)
                detail = "media attributes lack a positive integer width and height"
                return self._reject(Reason.MISSING_DIMENSIONS, line, data_row_id, detail)
            width = height = None
        split = self.splits.get(raw_split) if type(raw_split) is str else None
        if split is None:
            split = Split.parse(raw_split)
            if type(raw_split) is str and len(self.splits) < 64:
                self.splits[raw_split] = split
        if split is Split.UNASSIGNED:
            split = split_for_unassigned(self.options.unassigned, data_row_id)
            if split is Split.UNASSIGNED and not self.options.keep_unassigned:
                self._count_box_rows(objects, box_key)
                detail = f"split {raw_split!r}" if raw_split is not None else "no split"
                return self._reject(Reason.UNASSIGNED_SPLIT, line, data_row_id, detail)
        if len(objects) > MAX_BOXES_PER_IMAGE and self.options.vertex_limits:
            count = sum(1 for o in objects if type(o) is dict and box_key in o)
            if count > MAX_BOXES_PER_IMAGE:
                detail = f"{count} boxes (Vertex allows {MAX_BOXES_PER_IMAGE})"
                return self._reject(Reason.TOO_MANY_BOXES, line, data_row_id, detail)
        boxes = read_boxes(
            objects,
            box_key,
            name_key,
            width,
            height,
            line,
            data_row_id,
            self.stats,
            vertex_limits=self.options.vertex_limits,
        )
        if boxes:
            self.stats.rows_with_boxes += 1
        else:
            self._count_box_rows(objects, box_key)
            if self.require_boxes:
                return self._reject(Reason.NO_BOXES, line, data_row_id, "no usable box")
        return _new_row(
            ExportRow,
            (
                line,
                data_row_id,
                global_key if type(global_key) is str else None,
                row_data if type(row_data) is str else None,
                mime,
                width,
                height,
                split,
                boxes,
            ),
        )

    def _count_box_rows(self, objects: list[Any], box_key: str) -> None:
        if any(type(o) is dict and o.get(box_key) is not None for o in objects):
            self.stats.rows_with_boxes += 1

    def _reject(self, reason: Reason, line: int, data_row_id: str | None, detail: str) -> Rejection:
        return self.stats.reject(reason, line, data_row_id, detail)


def label_sections(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    """The (run id, run) pairs of a model-run row, else the (project id, project) pairs."""
    sections: list[tuple[str, Any]] = []
    experiments = obj.get("experiments")
    if type(experiments) is dict:
        for model in experiments.values():
            runs = model.get("runs") if type(model) is dict else None
            if type(runs) is dict:
                sections.extend(runs.items())
    if not sections:
        projects = obj.get("projects")
        if type(projects) is dict:
            sections.extend(projects.items())
    return sections


def _dimension(value: Any) -> int | None:
    if type(value) is int:
        return value if value > 0 else None
    if type(value) is float and value > 0 and value.is_integer():
        return int(value)
    return None
