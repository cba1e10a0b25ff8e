"""What the service needs from the pipeline: a small seam, so the HTTP layer and the worker
are tested with an in-test implementation and wired to the real runner in one adapter
(``vmt.service.pipeline_runs``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class RunService(Protocol):
    """Runs as the service sees them. Run views are JSON-ready mappings with at least
    ``run_id`` and ``state``."""

    def new_run_id(self) -> str:
        """A fresh, unique run id."""
        ...

    def start_run(
        self, run_id: str, *, model_run_id: str, model_type: str, model_id: str | None
    ) -> None:
        """Create (not advance) run ``run_id`` for a Labelbox model run. Idempotent: when the
        run already exists, do nothing."""
        ...

    def run_state(self, run_id: str) -> str | None:
        """Just the run's state (cheap: answered on every webhook delivery); None if unknown."""
        ...

    def get_run(self, run_id: str) -> Mapping[str, Any] | None:
        """The run's stages, timings, handles, errors and metrics summary; None if unknown."""
        ...

    def list_runs(self, *, limit: int) -> Sequence[Mapping[str, Any]]:
        """The most recent runs first."""
        ...

    def cancel(self, run_id: str) -> Mapping[str, Any]:
        """Cancel a run (raises ``NotFoundError`` / ``RunConflictError``); return its view."""
        ...

    def unfinished_runs(self) -> Sequence[str]:
        """Run ids that are neither complete, failed nor cancelled (resumed on start)."""
        ...

    def advance(self, run_id: str) -> float | None:
        """Do the run's next piece of work. None when the run needs nothing more (finished,
        failed or cancelled); otherwise the seconds after which to call again (e.g. while an
        external training job runs). Errors of the run are recorded on the run, not raised."""
        ...

    def check_ready(self) -> None:
        """Raise if the run store cannot be reached."""
        ...
