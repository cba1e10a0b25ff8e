"""A started Labelbox export task, to its rows: wait for it (polled, with a deadline and
cancellation), keep its errors stream, and stream its result rows in constant memory.

One implementation for every export vmt starts: a model run's (``source.py``) and a pool's
(``pool_export.py``). Each SDK call goes through the caller's retrying, translating ``call``
(``LabelboxConnection.call`` / ``LabelboxWorkspace.call``); the SDK calls are
``ExportTask.get_task`` (``GetUserPyApi`` + ``GetUserCreatedTasksPyApi``), ``get_total_lines``
(``GetExportMetadataHeaderPyApi``) and ``get_buffered_stream`` (``GetExportFileFromOffsetPyApi``
and the file chunks it names).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson

from vmt.config import Settings
from vmt.errors import BackendError

T = TypeVar("T")

MAX_ERROR_EVENTS = 20
"""Errors of an export shown as events (all of them go to the errors file)."""
PROGRESS_EVERY = 1000


class SdkCall(Protocol):
    """Run one SDK operation with retries; failures come out as ``VmtError``."""

    def __call__(self, fn: Callable[[], T], what: str) -> T: ...


class ExportWatcher(Protocol):
    """What an export reports to (a ``RunContext`` is one)."""

    def event(self, message: str, **data: object) -> None: ...

    def progress(self, done: int, total: int | None = None, *, what: str = "") -> None: ...

    def check_cancelled(self) -> None: ...


def get_task(client: Any, task_id: str, call: SdkCall) -> Any:
    """The export task ``task_id`` (``NotFoundError`` when Labelbox no longer has it)."""
    from labelbox.schema.export_task import ExportTask

    return call(lambda: ExportTask.get_task(client, task_id), "export task")


def wait_until_done(
    task: Any,
    *,
    client: Any,
    call: SdkCall,
    watcher: ExportWatcher,
    settings: Settings,
    describe: str,
    run_id: str | None = None,
) -> Any:
    """Poll ``task`` every ``labelbox_poll_seconds`` until it is COMPLETE and return it.

    Raises ``BackendError`` when it FAILED, or (retryable) when it is still running after
    ``labelbox_wait_timeout_s``; ``RunCancelled`` when the watcher is cancelled. ``describe``
    names what is exported in those messages (e.g. ``model run X``)."""
    task_id = str(task.uid)
    deadline = time.monotonic() + settings.labelbox_wait_timeout_s
    while task.status not in ("COMPLETE", "FAILED"):
        watcher.check_cancelled()
        if time.monotonic() > deadline:
            raise BackendError(
                f"Labelbox export task {task_id} of {describe} is still {task.status} after "
                f"{settings.labelbox_wait_timeout_s:.0f}s; try again later",
                retryable=True,
                run_id=run_id,
            )
        time.sleep(settings.labelbox_poll_seconds)
        task = get_task(client, task_id, call)
    if task.status == "FAILED":
        raise BackendError(
            f"Labelbox export task {task_id} of {describe} failed; see the events for its "
            "errors and try again",
            run_id=run_id,
        )
    return task


def save_errors(task: Any, *, call: SdkCall, watcher: ExportWatcher, path: Path) -> int:
    """Write the task's errors stream (if any) to ``path`` as NDJSON, the first
    ``MAX_ERROR_EVENTS`` also as events; the number of errors (0: no file written)."""
    if not call(task.has_errors, "export errors"):
        return 0

    def save() -> int:
        count = 0
        with path.open("wb") as out:
            for output in task.get_buffered_stream(stream_type=stream_type("ERRORS")):
                out.write(orjson.dumps(output.json) + b"\n")
                if count < MAX_ERROR_EVENTS:
                    watcher.event("labelbox export error", error=output.json)
                count += 1
        return count

    count = call(save, "export errors download")
    watcher.event("labelbox export reported errors", count=count, path=path.name)
    return count


def total_rows(task: Any, call: SdkCall) -> int | None:
    """Lines of the result stream; None when the task has no result stream (nothing found)."""
    total: int | None = call(lambda: task.get_total_lines(stream_type("RESULT")), "export size")
    return total


def result_rows(
    task: Any, *, watcher: ExportWatcher, total: int | None, what: str
) -> Iterator[dict[str, Any]]:
    """The result rows, one at a time, with progress (``what``) and a cancellation check every
    ``PROGRESS_EVERY`` rows. Nothing is read when ``total`` is 0 or None (no result stream).
    Run the iteration inside ``call`` so a broken download is retried from the start."""
    done = 0
    watcher.progress(0, total, what=what)
    if total:
        for output in task.get_buffered_stream():
            yield output.json
            done += 1
            if done % PROGRESS_EVERY == 0:
                watcher.check_cancelled()
                watcher.progress(done, total, what=what)
    watcher.progress(done, total, what=what)


def stream_type(name: str) -> Any:
    from labelbox.schema.export_task import StreamType

    return StreamType[name]
