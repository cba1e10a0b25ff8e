"""``RunContext`` implementations: what a backend sees of the run it works for."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vmt.errors import RunCancelled, RunConflictError
from vmt.pipeline.lease import Heartbeat
from vmt.pipeline.protocols import Stage
from vmt.pipeline.store import RunStore

log = logging.getLogger("vmt")

PROGRESS_WRITE_INTERVAL = 1.0
"""Seconds between progress writes to the store (displays get every update)."""


class RunObserver:
    """Callbacks for a display (CLI progress bars, service logs). The base does nothing."""

    def event(
        self, run_id: str, stage: Stage | None, message: str, data: Mapping[str, Any]
    ) -> None:
        return None

    def progress(
        self, run_id: str, stage: Stage | None, done: int, total: int | None, what: str
    ) -> None:
        return None


class StoreRunContext:
    """The run context of an advancing run: handles, events and progress go to the store;
    cancellation and a lost lease are seen through the heartbeat."""

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        *,
        heartbeat: Heartbeat | None = None,
        observer: RunObserver | None = None,
    ) -> None:
        self._store = store
        self._run_id = run_id
        self._heartbeat = heartbeat
        self._observer = observer or RunObserver()
        self._last_progress_write = 0.0
        self.stage: Stage | None = None
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def workdir(self) -> Path:
        return self._store.run_dir(self._run_id)

    def get_handle(self, key: str) -> str | None:
        return self._store.get_handle(self._run_id, key)

    def set_handle(self, key: str, value: str) -> None:
        self._store.set_handle(self._run_id, key, value)
        self.event("handle recorded", key=key, value=value)

    def event(self, message: str, **data: object) -> None:
        self._store.add_event(self._run_id, message, stage=self.stage, data=data)
        log.info("run %s%s: %s", self._run_id, f" [{self.stage}]" if self.stage else "", message)
        self._observer.event(self._run_id, self.stage, message, data)

    def progress(self, done: int, total: int | None = None, *, what: str = "") -> None:
        self._observer.progress(self._run_id, self.stage, done, total, what)
        now = time.monotonic()
        finished = total is not None and done >= total
        if self.stage is not None and (
            finished or now - self._last_progress_write >= PROGRESS_WRITE_INTERVAL
        ):
            self._last_progress_write = now
            self._store.set_progress(self._run_id, self.stage, done, total)

    def check_cancelled(self) -> None:
        if self._heartbeat is None:
            cancelled = self._store.cancel_requested(self._run_id)
        else:
            if self._heartbeat.lost.is_set():
                raise RunConflictError(
                    f"run {self._run_id} was taken over by another process; this one stops",
                    run_id=self._run_id,
                    stage=self.stage,
                )
            cancelled = self._heartbeat.cancelled.is_set()
        if cancelled:
            raise RunCancelled(f"run {self._run_id} was cancelled", run_id=self._run_id)

    def detach(self) -> StoreRunContext:
        """The same run, stage and observer, with cancellation read from the store: for work
        that goes on after the advancing call returns (a local training thread)."""
        detached = StoreRunContext(self._store, self._run_id, observer=self._observer)
        detached.stage = self.stage
        return detached


class DetachedRunContext:
    """A context outside an advancing run (``vmt predict`` with a trained model): reads the
    run's handles, keeps new ones in memory, logs events, never cancelled."""

    def __init__(
        self,
        run_id: str,
        workdir: Path,
        handles: Mapping[str, str],
        *,
        observer: RunObserver | None = None,
    ) -> None:
        self._run_id = run_id
        self._workdir = workdir
        self._handles = dict(handles)
        self._observer = observer or RunObserver()
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def workdir(self) -> Path:
        return self._workdir

    def get_handle(self, key: str) -> str | None:
        return self._handles.get(key)

    def set_handle(self, key: str, value: str) -> None:
        self._handles[key] = value

    def event(self, message: str, **data: object) -> None:
        log.info("run %s (detached): %s", self._run_id, message)
        self._observer.event(self._run_id, None, message, data)

    def progress(self, done: int, total: int | None = None, *, what: str = "") -> None:
        self._observer.progress(self._run_id, None, done, total, what)

    def check_cancelled(self) -> None:
        return None

    def detach(self) -> DetachedRunContext:
        return self
