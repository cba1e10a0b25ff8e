"""The ``RunService`` of the real pipeline: runs are Labelbox model runs (source and sink
``labelbox``) trained by the backend of the requested model type, kept in the run store."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from vmt.config import Settings
from vmt.errors import BackendError, NotFoundError, RunConflictError
from vmt.model_types import model_type as find_model_type
from vmt.pipeline.run_config import labelbox_run_config
from vmt.pipeline.runner import Runner
from vmt.pipeline.store import RunRecord, RunState, UnknownRunError, new_run_id

log = logging.getLogger("vmt")

_UNFINISHED = (RunState.PENDING, RunState.RUNNING)
_RECENT_EVENTS = 50


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


class PipelineRunService:
    """Adapts ``vmt.pipeline.runner.Runner`` to what the service needs."""

    def __init__(
        self,
        settings: Settings,
        *,
        runner: Runner | None = None,
        conflict_retry_seconds: float = 30.0,
        on_complete: Callable[[str], None] | None = None,
    ) -> None:
        """``on_complete(run_id)`` is called once a run this service advanced completes (the
        optional automatic pre-labelling)."""
        if runner is None:
            from vmt.backends.factory import build_backends

            runner = Runner(settings, backends_factory=build_backends)
        self.runner = runner
        self.unassigned = settings.unassigned
        self.on_complete = on_complete
        self.store = self.runner.store
        self.conflict_retry_seconds = conflict_retry_seconds

    def new_run_id(self) -> str:
        return new_run_id()

    def start_run(
        self, run_id: str, *, model_run_id: str, model_type: str, model_id: str | None
    ) -> None:
        try:
            self.store.get_run(run_id)
            return  # created before (a claim taken over after a crash)
        except UnknownRunError:
            pass
        trainer = find_model_type(model_type).trainer
        config = labelbox_run_config(
            model_run_id=model_run_id, trainer=trainer, unassigned=self.unassigned
        )
        self.store.create_run(config, run_id=run_id)
        log.info("run %s: created for model run %s (model %s)", run_id, model_run_id, model_id)

    def run_state(self, run_id: str) -> str | None:
        try:
            return self.store.get_run(run_id).state.value
        except UnknownRunError:
            return None

    def get_run(self, run_id: str) -> Mapping[str, Any] | None:
        try:
            record = self.store.get_run(run_id)
        except UnknownRunError:
            return None
        return self._view(record, detail=True)

    def list_runs(self, *, limit: int) -> Sequence[Mapping[str, Any]]:
        return [self._view(record, detail=False) for record in self.store.list_runs(limit=limit)]

    def cancel(self, run_id: str) -> Mapping[str, Any]:
        try:
            record = self.store.get_run(run_id)
        except UnknownRunError:
            raise NotFoundError(f"no run {run_id}") from None
        if record.state in (RunState.COMPLETE, RunState.CANCELLED):
            raise RunConflictError(f"run {run_id} is already {record.state.value}", run_id=run_id)
        self.runner.cancel(run_id)
        return self._view(self.store.get_run(run_id), detail=True)

    def unfinished_runs(self) -> Sequence[str]:
        return [r.id for r in self.store.list_runs() if r.state in _UNFINISHED]

    def advance(self, run_id: str) -> float | None:
        record = self.store.get_run(run_id)
        if record.state not in _UNFINISHED:
            return None
        try:
            step = self.runner.advance_once(run_id)
        except RunConflictError as exc:
            log.info("run %s: %s; looking again later", run_id, exc)
            return self.conflict_retry_seconds
        if step.again_in is not None:
            return step.again_in
        final = step.run
        log.info("run %s: %s", run_id, final.state.value)
        if final.state is RunState.COMPLETE and self.on_complete is not None:
            self.on_complete(run_id)
        return None

    def check_ready(self) -> None:
        try:
            self.store.list_runs(limit=1)
        except sqlite3.Error as exc:
            raise BackendError(f"run store unreachable: {exc}", retryable=True) from exc

    def _view(self, record: RunRecord, *, detail: bool) -> dict[str, Any]:
        source = record.config.source.options
        view: dict[str, Any] = {
            "run_id": record.id,
            "state": record.state.value,
            "stage": record.stage.value if record.stage else None,
            "model_run_id": source.get("model_run_id"),
            "trainer": record.config.trainer.kind,
            "label": record.config.label,
            "created": _iso(record.created),
            "updated": _iso(record.updated),
            "error": record.error,
            "cancel_requested": record.cancel_requested,
            "metrics": _metrics_view(record),
        }
        if not detail:
            return view
        view["stages"] = [
            {
                "stage": s.stage.value,
                "state": s.state.value,
                "started": _iso(s.started),
                "finished": _iso(s.finished),
                "seconds": s.seconds,
                "attempts": s.attempts,
                "error": s.error,
                "progress": {"done": s.progress_done, "total": s.progress_total},
            }
            for s in self.store.stages(record.id)
        ]
        view["handles"] = self.store.handles(record.id)
        view["errors"] = [
            {
                "time": _iso(e.ts),
                "stage": e.stage.value if e.stage else None,
                "kind": e.kind,
                "message": e.message,
                "retryable": e.retryable,
            }
            for e in self.store.errors(record.id)
        ]
        view["events"] = [
            {"time": _iso(e.ts), "stage": e.stage.value if e.stage else None, "message": e.message}
            for e in self.store.events(record.id, last=_RECENT_EVENTS)
        ]
        return view


def _metrics_view(record: RunRecord) -> dict[str, Any]:
    """Each evaluated row set's figures (mAP, AP50, AP75, counts) and ``headline``: the one
    ``EvaluateResult.headline()`` picks (``rows``: ``test`` or ``all``, ``map``, ``ap50``)."""
    evaluation = record.evaluation
    if evaluation is None:
        return {}
    view: dict[str, Any] = {name: s.to_json() for name, s in evaluation.row_sets().items()}
    view["headline"] = evaluation.headline().model_dump(mode="json")
    return view
