"""What the dashboard's buttons do: cancel a run, resume it. A small seam, so the pages are
tested with the real runner and an app can plug in its own."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from vmt.errors import InputError, RunConflictError, VmtError
from vmt.pipeline.runner import Runner
from vmt.pipeline.store import RunState

log = logging.getLogger("vmt")


class RunActions(Protocol):
    def cancel(self, run_id: str) -> str:
        """Cancel the run; a short sentence for the page. Raises ``VmtError`` when it cannot."""
        ...

    def resume(self, run_id: str) -> str:
        """Continue the run in the background; a short sentence for the page."""
        ...


class RunnerActions:
    """Cancel and resume through the pipeline runner (its lease keeps one process per run)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def cancel(self, run_id: str) -> str:
        record = self.runner.cancel(run_id)
        if record.state is RunState.CANCELLED:
            return "run cancelled"
        return "cancel requested: the process advancing the run stops at its next check"

    def resume(self, run_id: str) -> str:
        record = self.runner.store.get_run(run_id)
        if record.state in (RunState.COMPLETE, RunState.CANCELLED):
            raise InputError(f"run {run_id} is {record.state.value}: nothing to resume")
        if record.is_active():
            raise RunConflictError(f"run {run_id} is already being advanced", run_id=run_id)
        with self._lock:
            thread = self._threads.get(run_id)
            if thread is not None and thread.is_alive():
                raise RunConflictError(f"run {run_id} is already being resumed", run_id=run_id)
            thread = threading.Thread(
                target=self._advance, args=(run_id,), name=f"vmt-resume-{run_id}", daemon=True
            )
            self._threads[run_id] = thread
        thread.start()
        return "run resumed"

    def _advance(self, run_id: str) -> None:
        try:
            final = self.runner.advance(run_id)
            log.info("run %s: %s", run_id, final.state.value)
        except VmtError as exc:
            log.warning("run %s: resume stopped: %s", run_id, exc.message)
        finally:
            self.runner.store.close_thread_connection()
