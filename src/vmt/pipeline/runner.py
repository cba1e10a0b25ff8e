"""The runner: advances a run stage by stage, durably, under a lease.

``advance`` (= resume) takes the run's lease, skips every stage already done, runs the next ones
with retries for transient errors, and records each stage's outputs the moment it finishes.
A process killed at any point leaves the run resumable by any other process: finished stages are
never redone, and backends re-attach to external jobs through the handles they recorded.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import TypeVar

from vmt.config import Settings
from vmt.errors import BackendError, InputError, RunCancelled, RunConflictError, VmtError
from vmt.formats.image_uri import redact_urls, redact_values
from vmt.pipeline import stages
from vmt.pipeline.context import RunObserver, StoreRunContext
from vmt.pipeline.failure import failure_message, storage_trouble
from vmt.pipeline.lease import Heartbeat, LeaseHolder
from vmt.pipeline.protocols import (
    DRY_RUN_OPTION,
    REPORT_HANDLE,
    STAGE_STATUS,
    Backends,
    RunStatus,
    Stage,
    TrainingPlanned,
)
from vmt.pipeline.results import EvaluateResult, PrepareResult, StageResult, TrainResult
from vmt.pipeline.run_config import RunConfig
from vmt.pipeline.stages import RunPaths
from vmt.pipeline.store import RunRecord, RunState, RunStore, StageState
from vmt.retry import Backoff, retry_call

T = TypeVar("T")

log = logging.getLogger("vmt")

BackendsFactory = Callable[[RunConfig, Settings], Backends]
"""Builds a run's backends from its configuration (``vmt.backends.factory.build_backends``);
the CLI and the service pass it in, so the pipeline imports no backend."""

CANCELLED_MESSAGE = "Run cancelled by a user (vmt cancel); start a new run to train again."


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.retryable


class Runner:
    def __init__(
        self,
        settings: Settings,
        *,
        backends_factory: BackendsFactory,
        store: RunStore | None = None,
        observer: RunObserver | None = None,
        backoff: Backoff | None = None,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float = 2.0,
    ) -> None:
        self.settings = settings
        self.store = store or RunStore.for_settings(settings)
        self._factory = backends_factory
        self._observer = observer or RunObserver()
        self._backoff = backoff or Backoff(
            base=2.0, cap=60.0, deadline=settings.stage_retry_deadline_s, max_attempts=6
        )
        self._lease_seconds = lease_seconds
        self._heartbeat_seconds = heartbeat_seconds

    # --- queries (for the CLI and the service) --------------------------------------------
    def list_runs(self, *, limit: int | None = None) -> list[RunRecord]:
        return self.store.list_runs(limit=limit)

    def get_run(self, run_id: str) -> RunRecord:
        return self.store.get_run(run_id)

    # --- commands --------------------------------------------------------------------------
    def create_run(self, config: RunConfig) -> str:
        """Record a new run (nothing runs until ``advance``). Checks the backends build."""
        self._factory(config, self.settings)
        return self.store.create_run(config)

    def advance(self, run_id: str) -> RunRecord:
        """Run the remaining stages of ``run_id`` and return its final record (COMPLETE, FAILED,
        CANCELLED, or PLANNED when a dry run stopped before launching training). A PLANNED run
        is launched: its dry-run option is turned off first. Raises ``RunConflictError`` when
        another process is advancing it."""
        run = self.store.get_run(run_id)
        if run.state is RunState.COMPLETE:
            return run
        if run.state is RunState.CANCELLED:
            raise InputError(f"run {run_id} was cancelled; start a new run to train again")
        holder = self._acquire(run_id)
        try:
            if run.state is RunState.PLANNED:
                self._launch_planned(run)
            with Heartbeat(
                renew=lambda: self.store.renew_lease(run_id, holder, self._lease_seconds),
                poll_cancel=lambda: self.store.cancel_requested(run_id),
                interval=self._heartbeat_seconds,
                on_exit=self.store.close_thread_connection,
            ) as heartbeat:
                ctx = StoreRunContext(
                    self.store, run_id, heartbeat=heartbeat, observer=self._observer
                )
                self._advance_locked(ctx)
        finally:
            self.store.release_lease(run_id, holder)
        return self.store.get_run(run_id)

    resume = advance

    def cancel(self, run_id: str) -> RunRecord:
        """Mark the run cancelled. An advancing process stops at its next check and cancels
        the trainer's job; when none is advancing, this process does it now."""
        run = self.store.get_run(run_id)
        if run.state in (RunState.COMPLETE, RunState.CANCELLED):
            raise InputError(f"run {run_id} is already {run.state.value}; nothing to cancel")
        self.store.request_cancel(run_id)
        self.store.add_event(run_id, "cancel requested", stage=run.stage)
        holder = LeaseHolder.for_this_process()
        if self.store.try_acquire_lease(run_id, holder, self._lease_seconds) is not None:
            return self.store.get_run(run_id)
        try:
            ctx = StoreRunContext(self.store, run_id, observer=self._observer)
            ctx.stage = run.stage
            backends = self._factory(run.config, self.settings)
            self._finish_cancel(ctx, backends)
        finally:
            self.store.release_lease(run_id, holder)
        return self.store.get_run(run_id)

    # --- internals -------------------------------------------------------------------------
    def _acquire(self, run_id: str) -> LeaseHolder:
        holder = LeaseHolder.for_this_process()
        current = self.store.try_acquire_lease(run_id, holder, self._lease_seconds)
        if current is not None:
            raise RunConflictError(
                f"run {run_id} is already being advanced by {current.describe()}; "
                f"wait for it to finish (`vmt runs show {run_id}`) or stop it with "
                f"`vmt cancel {run_id}`",
                run_id=run_id,
            )
        return holder

    def _advance_locked(self, ctx: StoreRunContext) -> None:
        run_id = ctx.run_id
        run = self.store.get_run(run_id)
        backends = None
        try:
            backends = self._factory(run.config, self.settings)
            if self.store.cancel_requested(run_id):
                raise RunCancelled(f"run {run_id} was cancelled", run_id=run_id)
            ctx.event("advancing run", state=run.state.value)
            paths = RunPaths(ctx.workdir)
            for stage in stages_in_order():
                record = self.store.stage(run_id, stage)
                ctx.stage = stage
                if record.state is StageState.DONE:
                    ctx.event("stage already done; not redone")
                    continue
                ctx.check_cancelled()
                self._report(ctx, backends, STAGE_STATUS[stage], self._metadata(run_id, stage))
                self.store.start_stage(run_id, stage)
                ctx.event("stage started", attempt=record.attempts + 1)
                outputs = self._retrying(
                    ctx,
                    f"stage {stage}",
                    functools.partial(self._run_stage, ctx, stage, backends, paths),
                )
                self.store.finish_stage(run_id, stage, outputs.to_json())
                ctx.event("stage done", **outputs.brief())
            ctx.stage = None
            self.store.set_metrics(run_id, self.store.result(run_id, EvaluateResult).to_json())
            self._report(ctx, backends, RunStatus.COMPLETE, self._metadata(run_id, None))
            self.store.set_run_state(run_id, RunState.COMPLETE)
            ctx.event("run complete")
        except TrainingPlanned as planned:
            self._plan(ctx, planned)
        except RunCancelled:
            self._finish_cancel(ctx, backends)
        except RunConflictError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and reported
            self._fail(ctx, backends, exc)

    def _retrying(self, ctx: StoreRunContext, what: str, fn: Callable[[], T]) -> T:
        """``fn`` with retries of transient errors; each transient failure is recorded."""

        def attempt() -> T:
            try:
                return fn()
            except Exception as exc:
                if isinstance(exc, VmtError) and exc.stage is None and ctx.stage is not None:
                    exc.stage = ctx.stage.value
                if is_retryable(exc):
                    self.store.add_error(
                        ctx.run_id,
                        stage=ctx.stage,
                        kind=type(exc).__name__,
                        message=str(exc),
                        retryable=True,
                    )
                    ctx.event(f"{what}: transient error", error=str(exc)[:200])
                raise

        return retry_call(
            attempt,
            is_retryable=is_retryable,
            backoff=self._backoff,
            describe=f"run {ctx.run_id} {what}",
        )

    def _run_stage(
        self, ctx: StoreRunContext, stage: Stage, backends: Backends, paths: RunPaths
    ) -> StageResult:
        return stages.run_stage(
            stage,
            backends,
            ctx,
            paths=paths,
            trained_model=lambda: self.store.result(ctx.run_id, TrainResult).model,
        )

    def _report(
        self,
        ctx: StoreRunContext,
        backends: Backends,
        status: RunStatus,
        metadata: Mapping[str, object],
        error: str | None = None,
    ) -> None:
        self._retrying(
            ctx,
            f"status {status}",
            lambda: backends.sink.report_status(
                ctx,
                status,
                metadata=redact_values(metadata),
                error=None if error is None else redact_urls(error),
            ),
        )

    def _metadata(self, run_id: str, stage: Stage | None) -> dict[str, object]:
        run = self.store.get_run(run_id)
        metadata: dict[str, object] = {
            "vmt_run_id": run_id,
            "stage": stage.value if stage else "done",
            "trainer": run.config.trainer.kind,
        }
        if self.store.stage(run_id, Stage.PREPARE).state is StageState.DONE:
            prepared = self.store.result(run_id, PrepareResult)
            metadata.update(
                rows=prepared.rows, samples=prepared.samples, rejected=prepared.rejected
            )
        handles = self.store.handles(run_id)
        if handles:
            metadata["handles"] = handles
        if stage is None:
            metadata.update(self.store.result(run_id, EvaluateResult).headline().as_metadata())
            metadata["report"] = handles.get(
                REPORT_HANDLE, str(RunPaths(self.store.run_dir(run_id)).report)
            )
        return metadata

    def _launch_planned(self, run: RunRecord) -> None:
        trainer = run.config.trainer
        options = {**trainer.options, DRY_RUN_OPTION: False}
        config = run.config.model_copy(
            update={"trainer": trainer.model_copy(update={"options": options})}
        )
        self.store.set_config(run.id, config)
        self.store.set_run_state(run.id, RunState.PENDING)
        self.store.add_event(run.id, "planned run launched")

    def _plan(self, ctx: StoreRunContext, planned: TrainingPlanned) -> None:
        """A dry run stopped before launching: the run ends PLANNED, the stage is pending."""
        if ctx.stage is not None:
            self.store.reset_stage(ctx.run_id, ctx.stage)
        self.store.set_run_state(ctx.run_id, RunState.PLANNED)
        ctx.event("run planned", plan=str(planned), launch=f"vmt resume {ctx.run_id}")

    def _fail(self, ctx: StoreRunContext, backends: Backends | None, exc: Exception) -> None:
        run_id = ctx.run_id
        stage = ctx.stage
        if isinstance(exc, VmtError) and exc.stage is None and stage is not None:
            exc.stage = stage.value  # the stage that raised it, for every reader of the error
        if not isinstance(exc, VmtError) and storage_trouble(exc) is None:
            log.exception("run %s: internal error in stage %s", run_id, stage)
        message = failure_message(stage, exc, run_id=run_id)
        if stage is not None:
            self.store.fail_stage(run_id, stage, str(exc) or type(exc).__name__)
        if not is_retryable(exc):  # transient ones were recorded at each attempt
            self.store.add_error(
                run_id, stage=stage, kind=type(exc).__name__, message=str(exc), retryable=False
            )
        self.store.set_run_state(run_id, RunState.FAILED, error=message)
        ctx.event("run failed", error=message)
        if backends is not None:
            self._report_quietly(ctx, backends, RunStatus.FAILED, message)

    def _finish_cancel(self, ctx: StoreRunContext, backends: Backends | None) -> None:
        run_id = ctx.run_id
        if (
            ctx.stage is not None
            and self.store.stage(run_id, ctx.stage).state is StageState.RUNNING
        ):
            self.store.fail_stage(run_id, ctx.stage, "cancelled")
        if backends is not None:
            try:
                self._retrying(ctx, "cancel", lambda: backends.trainer.cancel(ctx))
            except VmtError as exc:
                self.store.add_error(
                    run_id,
                    stage=ctx.stage,
                    kind=type(exc).__name__,
                    message=str(exc),
                    retryable=False,
                )
                ctx.event("cancelling the trainer's job failed", error=str(exc)[:200])
        self.store.set_run_state(run_id, RunState.CANCELLED, error=CANCELLED_MESSAGE)
        ctx.event("run cancelled")
        if backends is not None:
            self._report_quietly(ctx, backends, RunStatus.FAILED, CANCELLED_MESSAGE)

    def _report_quietly(
        self, ctx: StoreRunContext, backends: Backends, status: RunStatus, error: str
    ) -> None:
        """Report a final FAILED status; a failure to report is recorded, never raised over
        the error being reported."""
        try:
            self._report(ctx, backends, status, self._metadata(ctx.run_id, ctx.stage), error)
        except Exception as exc:  # noqa: BLE001 - must not hide the error being reported
            log.warning("run %s: could not report status %s: %s", ctx.run_id, status, exc)
            self.store.add_error(
                ctx.run_id,
                stage=ctx.stage,
                kind=type(exc).__name__,
                message=f"reporting status {status} failed: {exc}",
                retryable=False,
            )


def stages_in_order() -> tuple[Stage, ...]:
    return tuple(Stage)
