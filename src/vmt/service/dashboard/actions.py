"""What the dashboard's buttons do: cancel a run, resume it. A small seam, so the pages are
tested with the real runner and an app can plug in its own."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from vmt.errors import InputError, RunConflictError
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
    """Cancel through the pipeline runner; resume by handing the run to the service's one
    scheduler (``schedule``: the run worker's ``submit``), never a thread of its own."""

    def __init__(self, runner: Runner, schedule: Callable[[str], None]) -> None:
        self.runner = runner
        self._schedule = schedule

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
        self.runner.reopen(run_id)
        self._schedule(run_id)
        return "run resumed"
