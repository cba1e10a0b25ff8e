"""One stage driver for both orchestrators: run a stage, record its result, build the status
metadata, map errors to the stage.

The local runner (``pipeline.runner``: SQLite store, lease, retries, a scheduler that comes back
after ``Pending``) and a Vertex AI pipeline step (``orchestrators.steps``: a run folder, one
container per stage) differ in where a run's records live and in how they wait; what a stage is,
what it reports to the sink and what it records is said here once. Records are reached through
a small ``StageLedger``; errors raised inside ``stage_errors(stage)`` carry that stage (in the
spirit of httpx's ``map_exceptions``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from vmt.errors import VmtError
from vmt.formats.image_uri import redact_urls, redact_values
from vmt.pipeline import stages
from vmt.pipeline.protocols import (
    REPORT_HANDLE,
    STAGE_STATUS,
    Backends,
    Pending,
    RunContext,
    RunStatus,
    Stage,
)
from vmt.pipeline.results import EvaluateResult, PrepareResult, StageResult
from vmt.pipeline.stages import RunPaths

R = TypeVar("R", bound=StageResult)


class StageLedger(Protocol):
    """Where a run's stage results and handles are recorded (the run store, a run folder)."""

    def stage_result(self, stage: Stage) -> Mapping[str, Any] | None:
        """The recorded result (``StageResult.to_json()``) of ``stage``; None until it is done."""
        ...

    def record_result(self, stage: Stage, result: StageResult) -> None:
        """Record ``stage`` as done with ``result`` (durable when this returns)."""
        ...

    def handles(self) -> Mapping[str, str]:
        """The run's recorded handles."""
        ...


@contextmanager
def stage_errors(stage: Stage | None) -> Iterator[None]:
    """A ``VmtError`` raised inside names ``stage`` (unless it already names one), so every
    reader of the error (failure message, run store, Labelbox status) says where it failed."""
    try:
        yield
    except VmtError as exc:
        if exc.stage is None and stage is not None:
            exc.stage = stage.value
        raise


def earlier_result(ledger: StageLedger, kind: type[R]) -> R:
    """The recorded result of the earlier stage ``kind.stage``. Raises ``RuntimeError`` when
    that stage has not finished (an orchestrator ran the stages out of order)."""
    recorded = ledger.stage_result(kind.stage)
    if recorded is None:
        raise RuntimeError(f"stage {kind.stage} has not finished")
    return kind.from_json(recorded)


def run_metadata(
    ledger: StageLedger,
    *,
    run_id: str,
    trainer: str,
    stage: Stage | None,
    complete: bool = False,
    report: Path | None = None,
    orchestrator: str | None = None,
) -> dict[str, object]:
    """THE metadata sent with a status: run id, stage (``done`` once complete), trainer, row
    counts once prepared, handles; on COMPLETE the headline figures and the report's location
    (the sink's ``report`` handle, else ``report``)."""
    metadata: dict[str, object] = {
        "vmt_run_id": run_id,
        "stage": stage.value if stage else ("done" if complete else None),
        "trainer": trainer,
    }
    if orchestrator is not None:
        metadata["orchestrator"] = orchestrator
    prepared = ledger.stage_result(Stage.PREPARE)
    if prepared:
        counts = PrepareResult.from_json(prepared)
        metadata.update(rows=counts.rows, samples=counts.samples, rejected=counts.rejected)
    handles = dict(ledger.handles())
    if handles:
        metadata["handles"] = handles
    if complete:
        evaluated = ledger.stage_result(Stage.EVALUATE)
        if evaluated:
            metadata.update(EvaluateResult.from_json(evaluated).headline().as_metadata())
        metadata["report"] = handles.get(REPORT_HANDLE, str(report) if report else None)
    return metadata


class StageDriver:
    """Runs the stages of one run with its backends, whichever orchestrator drives it."""

    def __init__(
        self,
        backends: Backends,
        ctx: RunContext,
        ledger: StageLedger,
        *,
        trainer_kind: str,
        orchestrator: str | None = None,
    ) -> None:
        self.backends = backends
        self.ctx = ctx
        self.ledger = ledger
        self.paths = RunPaths(ctx.workdir)
        self._trainer_kind = trainer_kind
        self._orchestrator = orchestrator

    def metadata(self, stage: Stage | None, *, complete: bool = False) -> dict[str, object]:
        return run_metadata(
            self.ledger,
            run_id=self.ctx.run_id,
            trainer=self._trainer_kind,
            stage=stage,
            complete=complete,
            report=self.paths.report,
            orchestrator=self._orchestrator,
        )

    def earlier(self, kind: type[R]) -> R:
        """The recorded result of the finished stage ``kind.stage``."""
        return earlier_result(self.ledger, kind)

    def report(self, status: RunStatus, stage: Stage | None, error: str | None = None) -> None:
        """Report ``status`` to the sink with the run's metadata (URLs and secrets redacted)."""
        metadata = self.metadata(stage, complete=status is RunStatus.COMPLETE)
        self.backends.sink.report_status(
            self.ctx,
            status,
            metadata=redact_values(metadata),
            error=None if error is None else redact_urls(error),
        )

    def report_started(self, stage: Stage) -> None:
        self.report(STAGE_STATUS[stage], stage)

    def run(self, stage: Stage) -> StageResult | Pending:
        """Run (or poll) ``stage``; once it finishes its result is recorded in the ledger and
        returned. ``Pending`` while the trainer's job runs: nothing is recorded."""
        with stage_errors(stage):
            result = stages.run_stage(
                stage,
                self.backends,
                self.ctx,
                paths=self.paths,
                earlier=self.earlier,
            )
        if isinstance(result, Pending):
            return result
        self.ledger.record_result(stage, result)
        self.ctx.event("stage done", **result.brief())
        return result
