"""An in-memory ``RunService`` for testing the service's HTTP layer and worker in isolation."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vmt.errors import NotFoundError, RunConflictError


class FakeRuns:
    """Runs that complete after ``steps`` calls to ``advance``; counts every call."""

    def __init__(self, *, steps: int = 1, start_delay: float = 0.0) -> None:
        self.steps = steps
        self.start_delay = start_delay
        self.runs: dict[str, dict[str, Any]] = {}
        self.start_calls: list[str] = []
        self.advance_calls: list[str] = []
        self.advance_hook: Callable[[str], None] | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def new_run_id(self) -> str:
        with self._lock:
            return f"run-{next(self._ids):04d}"

    def start_run(
        self, run_id: str, *, model_run_id: str, model_type: str, model_id: str | None
    ) -> None:
        time.sleep(self.start_delay)  # widen the race window in concurrency tests
        with self._lock:
            self.start_calls.append(model_run_id)
            self.runs.setdefault(
                run_id,
                {
                    "run_id": run_id,
                    "state": "pending",
                    "model_run_id": model_run_id,
                    "model_type": model_type,
                    "advanced": 0,
                },
            )

    def run_state(self, run_id: str) -> str | None:
        with self._lock:
            run = self.runs.get(run_id)
            return str(run["state"]) if run is not None else None

    def get_run(self, run_id: str) -> Mapping[str, Any] | None:
        with self._lock:
            run = self.runs.get(run_id)
            return dict(run) if run is not None else None

    def list_runs(self, *, limit: int) -> Sequence[Mapping[str, Any]]:
        with self._lock:
            return [dict(r) for r in reversed(self.runs.values())][:limit]

    def cancel(self, run_id: str) -> Mapping[str, Any]:
        with self._lock:
            run = self.runs.get(run_id)
            if run is None:
                raise NotFoundError(f"no run {run_id}")
            if run["state"] in ("complete", "cancelled"):
                raise RunConflictError(f"run {run_id} is already {run['state']}")
            run["state"] = "cancelled"
            return dict(run)

    def unfinished_runs(self) -> Sequence[str]:
        with self._lock:
            return [k for k, r in self.runs.items() if r["state"] in ("pending", "running")]

    def advance(self, run_id: str) -> float | None:
        self.advance_calls.append(run_id)
        if self.advance_hook is not None:
            self.advance_hook(run_id)
        with self._lock:
            run = self.runs[run_id]
            if run["state"] not in ("pending", "running"):
                return None
            run["advanced"] += 1
            run["state"] = "complete" if run["advanced"] >= self.steps else "running"
            return None if run["state"] == "complete" else 0.0

    def check_ready(self) -> None:
        return None
