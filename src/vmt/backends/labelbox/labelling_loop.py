"""The loop back into labelling on Labelbox: a finished run's pre-labels into a project, and a
ranking's top rows into project batches (optionally with their pre-labels).

Names are deterministic, so running a command again after a crash resumes it: pre-label imports
are ``vmt-<run>-mal-<pool key>-<confidence>-<chunk>``, batches the name the user gave.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import orjson

from vmt.backends.labelbox.batches import BatchSummary, send_batches
from vmt.backends.labelbox.prelabels import EventSink, PrelabelSummary, import_prelabels
from vmt.backends.labelbox.project import LabelboxProject
from vmt.durable_files import atomic_writer
from vmt.pool.pool_inputs import labelled_in_project
from vmt.pool.prelabel import PrelabelFile


@dataclass(frozen=True)
class ProjectPrelabels:
    file: PrelabelFile
    summary: PrelabelSummary


def import_prefix(run_id: str, prelabels: PrelabelFile) -> str:
    return f"vmt-{run_id}-mal-{prelabels.pool.folder.name}-{prelabels.threshold:.4f}"


def prelabel_project(
    project: LabelboxProject,
    *,
    run_id: str,
    prelabels: PrelabelFile,
    pool_export: Path,
    only: Collection[str] | None = None,
    on_event: EventSink | None = None,
) -> ProjectPrelabels:
    """Import ``prelabels`` (of the pool ``pool_export``) into the project; rows labelled in the
    project per the pool export are left alone. ``only``: restrict to these data rows."""
    rows_file = prelabels.path
    prefix = import_prefix(run_id, prelabels)
    if only is not None:
        chosen = set(only)
        rows_file = _restricted(prelabels.path, chosen)
        digest = hashlib.sha256("\n".join(sorted(chosen)).encode()).hexdigest()[:8]
        prefix = f"{prefix}-sel{digest}"
    summary = import_prelabels(
        project,
        rows_file=rows_file,
        prefix=prefix,
        labelled=labelled_in_project(pool_export, project.project_id),
        on_event=on_event,
    )
    return ProjectPrelabels(prelabels, summary)


def _restricted(path: Path, only: set[str]) -> Path:
    out = path.with_name(f"{path.stem}-selected-{len(only)}.ndjson")
    with path.open("rb") as src, atomic_writer(out) as dst:
        for line in src:
            if line.strip() and orjson.loads(line)["dataRow"]["id"] in only:
                dst.write(line)
    return out


def send_to_project(
    project: LabelboxProject,
    *,
    data_row_ids: list[str],
    batch: str,
    priority: int,
    on_event: EventSink | None = None,
) -> BatchSummary:
    """The ranked rows (best first) into batch(es) named ``batch``."""
    return send_batches(
        project, name=batch, data_row_ids=data_row_ids, priority=priority, on_event=on_event
    )
