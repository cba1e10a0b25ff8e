"""Idempotent, chunked uploads of NDJSON rows (predictions, custom metrics) to a model run.

Rows go up with ``model_run.add_predictions(name, rows)`` in chunks of
``Settings.prediction_chunk_size``. Each import is named from the run and the chunk
(``vmt-<run_id>-<kind>-<chunk>``), so a retried publish skips what is done: first by the local
marker written when a chunk's per-row errors were saved, then by asking Labelbox
(``MEAPredictionImport.from_name``), which also finds imports created by a process that died
before waiting on them. Only a name Labelbox does not know is uploaded.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from vmt.backends.labelbox.connection import LabelboxConnection
from vmt.durable_files import write_atomic
from vmt.errors import BackendError
from vmt.pipeline.protocols import RunContext

IMPORTS_DIR = "labelbox_imports"
_MAX_FAILURE_EVENTS = 20


def import_name(run_id: str, kind: str, chunk: int) -> str:
    return f"vmt-{run_id}-{kind}-{chunk}"


@dataclass
class UploadSummary:
    kind: str
    rows: int = 0
    chunks: int = 0
    uploaded_chunks: int = 0
    reused_chunks: int = 0
    failed_rows: int = 0
    failure_files: list[Path] = field(default_factory=list)


def upload_rows(
    connection: LabelboxConnection,
    ctx: RunContext,
    *,
    kind: str,
    rows: Iterable[dict[str, Any]],
    total: int | None = None,
) -> UploadSummary:
    """Upload ``rows`` chunk by chunk, waiting for each import; collect per-row failures."""
    settings = connection.settings
    folder = ctx.workdir / IMPORTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    summary = UploadSummary(kind)
    for index, chunk in enumerate(_chunks(rows, settings.prediction_chunk_size)):
        ctx.check_cancelled()
        name = import_name(ctx.run_id, kind, index)
        done_marker = folder / f"{name}.errors.ndjson"
        summary.chunks += 1
        summary.rows += len(chunk)
        if done_marker.exists():
            summary.reused_chunks += 1
        else:
            imp, created = connection.call(
                partial(_find_or_create, connection, name, chunk),
                f"{kind} import {name}",
                run_id=ctx.run_id,
            )
            ctx.set_handle(f"labelbox.imports.{kind}", name)  # the latest, not one per chunk
            if created:
                summary.uploaded_chunks += 1
                ctx.event("labelbox import created", name=name, rows=len(chunk))
            else:
                summary.reused_chunks += 1
                ctx.event("labelbox import already exists: not uploaded again", name=name)
            failures = _wait_for_failures(connection, ctx, imp, name)
            write_atomic(done_marker, b"".join(orjson.dumps(f) + b"\n" for f in failures))
            for failure in failures[:_MAX_FAILURE_EVENTS]:
                ctx.event("labelbox rejected a row", name=name, failure=failure)
        summary.failed_rows += count_lines(done_marker)
        summary.failure_files.append(done_marker)
        ctx.progress(summary.rows, total, what=f"{kind} rows uploaded")
    return summary


def _find_or_create(
    connection: LabelboxConnection, name: str, chunk: list[dict[str, Any]]
) -> tuple[Any, bool]:
    from labelbox.schema.annotation_import import MEAPredictionImport
    from lbox.exceptions import ResourceNotFoundError

    try:
        found = MEAPredictionImport.from_name(connection.client, connection.model_run_id, name)
        return found, False
    except ResourceNotFoundError:
        pass
    return connection.model_run().add_predictions(name=name, predictions=chunk), True


def _wait_for_failures(
    connection: LabelboxConnection, ctx: RunContext, imp: Any, name: str
) -> list[dict[str, Any]]:
    settings = connection.settings
    deadline = time.monotonic() + settings.labelbox_wait_timeout_s
    while _state(imp) == "RUNNING":
        ctx.check_cancelled()
        if time.monotonic() > deadline:
            raise BackendError(
                f"Labelbox import {name} is still running after "
                f"{settings.labelbox_wait_timeout_s:.0f}s; resume the run later",
                retryable=True,
                run_id=ctx.run_id,
            )
        time.sleep(settings.labelbox_poll_seconds)
        connection.call(imp.refresh, f"import {name} status", run_id=ctx.run_id)
    if _state(imp) == "FAILED":
        raise BackendError(
            f"Labelbox rejected the whole import {name} of model run "
            f"{connection.model_run_id}; check the rows in {IMPORTS_DIR}/ and publish again",
            run_id=ctx.run_id,
        )
    errors: list[dict[str, Any]] = connection.call(
        lambda: imp.errors, f"import {name} errors", run_id=ctx.run_id
    )
    return errors


def _state(imp: Any) -> str:
    state = imp.state
    return str(getattr(state, "value", state))


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def count_lines(path: Path) -> int:
    """Non-blank lines of an NDJSON file."""
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())
