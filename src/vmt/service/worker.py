"""The in-process worker: threads that advance runs through the ``RunService``.

A run id is scheduled at most once at a time (queued or being advanced). ``advance`` returns
when to look at the run again (e.g. while an external training job runs), so no thread sleeps
on a job. A run that raises is logged and retried later; it never stops the worker or the
service. Stopping does not wait for a run in the middle of a stage: the run keeps its state
in the store and is resumed at the next start.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Iterable

from vmt.service.runs import RunService

log = logging.getLogger("vmt")


class RunWorker:
    def __init__(
        self,
        runs: RunService,
        *,
        threads: int = 1,
        error_retry_seconds: float = 30.0,
        max_errors: int = 5,
    ) -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.runs = runs
        self.thread_count = threads
        self.error_retry_seconds = error_retry_seconds
        self.max_errors = max_errors
        self._errors: dict[str, int] = {}
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self._scheduled: set[str] = set()
        self._active: set[str] = set()
        self._rerun: set[str] = set()
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def start(self, *, resume: Iterable[str] = ()) -> None:
        """Start the threads and schedule the runs in ``resume`` (unfinished runs)."""
        self._stopping = False
        for index in range(self.thread_count):
            thread = threading.Thread(target=self._loop, name=f"vmt-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        pending = list(resume)
        if pending:
            log.info("resuming %d unfinished run(s)", len(pending))
        for run_id in pending:
            self.submit(run_id)

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        busy = [t.name for t in self._threads if t.is_alive()]
        if busy:
            log.warning("worker stopped with %d run(s) mid-stage; resumed at next start", len(busy))
        self._threads = []

    def submit(self, run_id: str, delay: float = 0.0) -> None:
        """Schedule ``run_id`` to be advanced after ``delay`` seconds (no duplicate entries)."""
        with self._cond:
            if run_id in self._active:
                self._rerun.add(run_id)
                return
            if run_id in self._scheduled:
                return
            self._scheduled.add(run_id)
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), run_id))
            self._cond.notify()

    def busy(self) -> bool:
        """Whether any run is queued or being advanced."""
        with self._cond:
            return bool(self._scheduled or self._active)

    def _next(self) -> str | None:
        with self._cond:
            while not self._stopping:
                if self._due:
                    when, _, run_id = self._due[0]
                    wait = when - time.monotonic()
                    if wait <= 0:
                        heapq.heappop(self._due)
                        self._scheduled.discard(run_id)
                        self._active.add(run_id)
                        return run_id
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            return None

    def _loop(self) -> None:
        while (run_id := self._next()) is not None:
            again: float | None
            try:
                again = self.runs.advance(run_id)
                self._errors.pop(run_id, None)
            except Exception:  # noqa: BLE001 - a failing run must never stop the worker
                again = self._after_error(run_id)
            with self._cond:
                self._active.discard(run_id)
                if run_id in self._rerun:
                    self._rerun.discard(run_id)
                    again = 0.0 if again is None else min(again, 0.0)
            if again is not None:
                self.submit(run_id, again)

    def _after_error(self, run_id: str) -> float | None:
        count = self._errors[run_id] = self._errors.get(run_id, 0) + 1
        if count >= self.max_errors:
            log.exception(
                "run %s failed %d times in a row; leaving it until restart", run_id, count
            )
            self._errors.pop(run_id, None)
            return None
        log.exception(
            "advancing run %s failed; retrying in %.0fs", run_id, self.error_retry_seconds
        )
        return self.error_retry_seconds
