"""Pre-labels into a Labelbox project: chunked, resumable ``MALPredictionImport`` imports.

Rows (MAL NDJSON, no confidence) are filtered first, deterministically, so a resumed import
cuts the same chunks: rows on data rows that already have a label in the project (``labelled``)
or that an earlier vmt import of another name pre-labelled are left out and counted (never
overwritten), and rows naming a class the project's ontology lacks are left out and reported by
class. Chunk ``i`` is named ``<prefix>-<i>``; a chunk is skipped when its local done marker
exists, and looked up by name (``MALPredictionImport.from_name``) before it is created, so an
import created by a process killed before it waited is found, not made twice. Per-row errors
from Labelbox are kept beside the marker.

The ledger lives in ``<state dir>/labelbox/projects/<project id>/``: ``prelabelled.ndjson``
(data row id and import name of every accepted pre-label) and ``imports/<name>.errors.ndjson``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from vmt.backends.labelbox.project import LabelboxProject
from vmt.durable_files import write_atomic
from vmt.errors import BackendError

LEDGER_FILE = "prelabelled.ndjson"

EventSink = Callable[[str, dict[str, object]], None]


@dataclass
class PrelabelSummary:
    rows: int = 0
    """Pre-label rows sent (after filtering)."""
    data_rows: int = 0
    chunks: int = 0
    uploaded_chunks: int = 0
    reused_chunks: int = 0
    failed_rows: int = 0
    skipped_labelled: int = 0
    """Data rows left alone because they already have a label."""
    skipped_prelabelled: int = 0
    """Data rows left alone because another import pre-labelled them."""
    classes_left_out: dict[str, int] = field(default_factory=dict)
    failure_files: list[Path] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "data_rows": self.data_rows,
            "chunks": self.chunks,
            "uploaded_chunks": self.uploaded_chunks,
            "reused_chunks": self.reused_chunks,
            "failed_rows": self.failed_rows,
            "skipped_labelled": self.skipped_labelled,
            "skipped_prelabelled": self.skipped_prelabelled,
            "classes_left_out": self.classes_left_out,
            "failure_files": [str(p) for p in self.failure_files],
        }


def ledger_dir(state_dir: Path, project_id: str) -> Path:
    return state_dir / "labelbox" / "projects" / project_id


def prelabelled_elsewhere(folder: Path, prefix: str) -> set[str]:
    """Data rows pre-labelled by vmt imports of another prefix (another run, pool, confidence
    or selection)."""
    path = folder / LEDGER_FILE
    if not path.is_file():
        return set()
    rows: set[str] = set()
    with path.open("rb") as f:
        for line in f:
            if line.endswith(b"\n"):  # a line cut by a crash was never acted on
                entry = orjson.loads(line)
                if entry["prefix"] != prefix:
                    rows.add(str(entry["data_row_id"]))
    return rows


def import_prelabels(
    project: LabelboxProject,
    *,
    rows_file: Path,
    prefix: str,
    labelled: Collection[str] = (),
    on_event: EventSink | None = None,
) -> PrelabelSummary:
    """Import the MAL rows of ``rows_file`` into the project; see the module doc."""
    settings = project.settings
    folder = ledger_dir(settings.state_dir, project.project_id)
    (folder / "imports").mkdir(parents=True, exist_ok=True)
    emit = on_event or (lambda _m, _d: None)
    known = project.class_names()
    elsewhere = prelabelled_elsewhere(folder, prefix)
    summary = PrelabelSummary()
    left_out: Counter[str] = Counter()
    skipped_labelled: set[str] = set()
    skipped_elsewhere: set[str] = set()
    data_rows: set[str] = set()

    def kept_rows() -> Iterator[dict[str, Any]]:
        with rows_file.open("rb") as f:
            for line in f:
                if not line.strip():
                    continue
                row = orjson.loads(line)
                data_row_id = row["dataRow"]["id"]
                if data_row_id in labelled:
                    skipped_labelled.add(data_row_id)
                elif data_row_id in elsewhere:
                    skipped_elsewhere.add(data_row_id)
                elif row.get("name") not in known:
                    left_out[str(row.get("name"))] += 1
                else:
                    data_rows.add(data_row_id)
                    yield row

    rows = kept_rows()
    index = 0
    while chunk := list(islice(rows, settings.prediction_chunk_size)):
        name = f"{prefix}-{index}"
        index += 1
        marker = folder / "imports" / f"{name}.errors.ndjson"
        summary.chunks += 1
        summary.rows += len(chunk)
        if marker.is_file():
            summary.reused_chunks += 1
        else:
            imp, created = project.call(
                partial(_find_or_create, project, name, chunk), f"pre-label import {name}"
            )
            if created:
                summary.uploaded_chunks += 1
                emit("labelbox pre-label import created", {"name": name, "rows": len(chunk)})
            else:
                summary.reused_chunks += 1
                emit("labelbox pre-label import already exists: not uploaded again", {"name": name})
            failures = _wait_for_failures(project, imp, name)
            failed = {str(f.get("uuid")) for f in failures}
            accepted = sorted({r["dataRow"]["id"] for r in chunk if str(r["uuid"]) not in failed})
            with (folder / LEDGER_FILE).open("ab") as ledger:
                for data_row_id in accepted:
                    ledger.write(
                        orjson.dumps({"data_row_id": data_row_id, "import": name, "prefix": prefix})
                        + b"\n"
                    )
            write_atomic(marker, b"".join(orjson.dumps(f) + b"\n" for f in failures))
        summary.failed_rows += _count_lines(marker)
        summary.failure_files.append(marker)
    summary.data_rows = len(data_rows)
    summary.skipped_labelled = len(skipped_labelled)
    summary.skipped_prelabelled = len(skipped_elsewhere)
    summary.classes_left_out = dict(left_out)
    if left_out:
        emit(
            "pre-labels of classes missing from the project's ontology were left out",
            {"classes": dict(left_out)},
        )
    return summary


def _find_or_create(
    project: LabelboxProject, name: str, chunk: list[dict[str, Any]]
) -> tuple[Any, bool]:
    from labelbox.schema.annotation_import import MALPredictionImport
    from lbox.exceptions import ResourceNotFoundError

    try:
        return MALPredictionImport.from_name(project.client, project.project_id, name), False
    except ResourceNotFoundError:
        pass
    created = MALPredictionImport.create_from_objects(
        project.client, project.project_id, name, chunk
    )
    return created, True


def _wait_for_failures(project: LabelboxProject, imp: Any, name: str) -> list[dict[str, Any]]:
    settings = project.settings
    deadline = time.monotonic() + settings.labelbox_wait_timeout_s
    while _state(imp) == "RUNNING":
        if time.monotonic() > deadline:
            raise BackendError(
                f"Labelbox pre-label import {name} is still running after "
                f"{settings.labelbox_wait_timeout_s:.0f}s; run the command again later",
                retryable=True,
            )
        time.sleep(settings.labelbox_poll_seconds)
        project.call(imp.refresh, f"pre-label import {name} status")
    if _state(imp) == "FAILED":
        raise BackendError(
            f"Labelbox rejected the whole pre-label import {name} of project "
            f"{project.project_id}; check the rows and run the command again"
        )
    errors: list[dict[str, Any]] = project.call(lambda: imp.errors, f"import {name} errors")
    return errors


def _state(imp: Any) -> str:
    state = imp.state
    return str(getattr(state, "value", state))


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())
