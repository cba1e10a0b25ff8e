"""What selection and pre-labelling read: pool rows, predictions made elsewhere, and the facts
of a finished run (its decision threshold, its training boxes per class).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from vmt.detection_table import DetectionTable, KnownRows, PredictionsRead
from vmt.domain import Rejection, Sample, Split
from vmt.errors import InputError
from vmt.pipeline import artifacts
from vmt.pipeline.artifacts import SampleFile

DEFAULT_THRESHOLD = 0.5
"""The decision threshold when a run has no F1-optimal confidence (no ground truth)."""


@dataclass(frozen=True)
class PoolRows:
    samples: list[Sample]
    rejections: list[Rejection]

    @property
    def data_row_ids(self) -> list[str]:
        return [s.data_row_id for s in self.samples]

    @property
    def global_keys(self) -> dict[str, str]:
        return {s.data_row_id: s.global_key for s in self.samples if s.global_key}


def read_pool_rows(export: Path) -> PoolRows:
    """Every row of a Labelbox export (any split, with or without boxes); broken rows become
    rejections with their line. ``InputError`` when the file is missing or has no usable row."""
    from vmt.formats.export_options import ExportOptions
    from vmt.formats.labelbox_export import read_samples

    if not export.is_file():
        raise InputError(f"pool file not found: {export}")
    options = ExportOptions.pool()
    samples: list[Sample] = []
    rejections: list[Rejection] = []
    for item in read_samples(export, options):
        if isinstance(item, Sample):
            samples.append(item)
        else:
            rejections.append(item)
    if not samples:
        raise InputError(f"no usable rows in pool {export} ({len(rejections)} rejected)")
    return PoolRows(samples, rejections)


def align(table: DetectionTable, data_row_ids: Sequence[str]) -> tuple[DetectionTable, int]:
    """``table`` re-indexed to exactly ``data_row_ids`` (rows without detections included);
    also the number of detections dropped because their row is not among them."""
    position = {row_id: i for i, row_id in enumerate(data_row_ids)}
    mapped = np.asarray([position.get(row_id, -1) for row_id in table.data_row_ids], dtype=np.int64)
    new_row = mapped[table.row] if len(table) else np.empty(0, dtype=np.int64)
    keep = new_row >= 0
    aligned = DetectionTable(
        data_row_ids=tuple(data_row_ids),
        labels=table.labels,
        row=new_row[keep],
        label=table.label[keep],
        xywh=table.xywh[keep],
        score=table.score[keep],
    )
    return aligned, int((~keep).sum())


def read_prediction_file(
    path: Path, pool: PoolRows, *, fmt: str | None = None
) -> tuple[DetectionTable, PredictionsRead]:
    """Predictions made elsewhere (Labelbox NDJSON by data row id or global key, Vertex batch
    output matched by image URI, or an empty file) on the pool's rows, aligned to the pool;
    the formats and matching rules are ``vmt evaluate``'s (``read_prediction_rows``)."""
    from vmt.formats import detect_format
    from vmt.formats.evaluation_inputs import read_prediction_rows

    if not path.exists():
        raise InputError(f"predictions not found: {path}")
    ids = pool.data_row_ids
    known = KnownRows.from_samples(pool.samples, set(ids), None)
    read = read_prediction_rows(
        path,
        fmt=fmt or detect_format.prediction_format(path),
        samples=pool.samples,
        known=known,
    )
    table, _ = align(read.table, ids)
    return table, read


def run_threshold(run_dir: Path) -> tuple[float, str]:
    """The run's decision threshold from its ``metrics.json``: the F1-optimal confidence when
    the run had ground truth to optimise on; else ``DEFAULT_THRESHOLD``. Also where it came
    from (``auto``, ``given``, ``default``)."""
    path = run_dir / artifacts.METRICS_FILE
    if not path.is_file():
        return DEFAULT_THRESHOLD, "default"
    metrics = orjson.loads(path.read_bytes())
    value = metrics.get("confidence_threshold")
    if not isinstance(value, int | float):
        return DEFAULT_THRESHOLD, "default"
    return float(value), str(metrics.get("confidence_source") or "auto")


def training_box_counts(samples: Iterable[Sample]) -> dict[str, int]:
    """Boxes per class over the TRAINING rows of ``samples``."""
    counts: Counter[str] = Counter()
    for sample in samples:
        if sample.split is Split.TRAINING:
            counts.update(box.label for box in sample.boxes)
    return dict(counts)


def run_training_box_counts(run_dir: Path) -> dict[str, int] | None:
    """Training boxes per class of a run (its ``samples.jsonl``), None when it has none."""
    path = run_dir / artifacts.SAMPLES_FILE
    return training_box_counts(SampleFile(path)) if path.is_file() else None


def labelled_in_project(export: Path, project_id: str) -> set[str]:
    """Data rows of a project export (``projects.<id>.labels``) that have a label in
    ``project_id``; lines that are not JSON objects are skipped (the pool reader reports them)."""
    labelled: set[str] = set()
    with export.open("rb") as f:
        for line in f:
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(row, dict) and has_label_in(row, project_id):
                labelled.add(str(row["data_row"]["id"]))
    return labelled


def project_section(row: dict[str, Any], project_id: str) -> dict[str, Any] | None:
    """``projects.<project_id>`` of an export v2 row: present when the row is in the project
    (and the export asked for that project), else None."""
    projects = row.get("projects")
    section = projects.get(project_id) if isinstance(projects, dict) else None
    return section if isinstance(section, dict) else None


def has_label_in(row: dict[str, Any], project_id: str) -> bool:
    """True when an export v2 row has a label in ``project_id`` (and a data row id)."""
    section = project_section(row, project_id)
    return (
        section is not None
        and bool(section.get("labels"))
        and isinstance(row.get("data_row"), dict)
    )


POOL_ROW_FIELDS = ("id", "global_key", "external_id", "row_data")
"""What a pool row keeps of ``data_row``: what the pool reader and the Labelbox calls use."""


def pool_row(row: dict[str, Any], project_id: str | None) -> dict[str, Any]:
    """An exported row cut to what a pool reads: ``data_row`` (id, global key, external id,
    row data), ``media_attributes`` and, when ``project_id`` is given and the row is in it,
    that project's labels (id and annotations). Volatile fields (timestamps, workflow
    details) are left out, so an unchanged pool exports to the same bytes."""
    data_row = row.get("data_row")
    kept: dict[str, Any] = {
        "data_row": {k: data_row[k] for k in POOL_ROW_FIELDS if k in data_row}
        if isinstance(data_row, dict)
        else data_row
    }
    if "media_attributes" in row:
        kept["media_attributes"] = row["media_attributes"]
    section = project_section(row, project_id) if project_id is not None else None
    if section is not None:
        assert project_id is not None
        found = section.get("labels")
        labels: list[Any] = found if isinstance(found, list) else []
        kept["projects"] = {
            project_id: {
                "labels": [
                    {k: label[k] for k in ("id", "annotations") if k in label}
                    if isinstance(label, dict)
                    else label
                    for label in labels
                ]
            }
        }
    return kept
