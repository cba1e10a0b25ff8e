"""The runner: advances a run stage by stage, durably, under a lease.

``advance_once`` takes the run's lease, skips every stage already done, runs the next ones with
retries for transient errors through the ``StageDriver``, records each stage's result the moment
it finishes, and returns as soon as the trainer answers ``Pending`` (its job runs elsewhere),
saying when to come back: the service's worker schedules that, so no thread waits on a job.
``advance`` (= resume) is the same for a terminal: it waits between calls until the run ends.
A process killed at any point leaves the run resumable by any other process: finished stages are
never redone, and backends re-attach to external jobs through the handles they recorded.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from vmt.config import Settings
from vmt.errors import BackendError, InputError, RunCancelled, RunConflictError, VmtError
from vmt.pipeline.context import RunObserver, StoreRunContext
from vmt.pipeline.failure import failure_message, storage_trouble
from vmt.pipeline.lease import Heartbeat, LeaseHolder
from vmt.pipeline.protocols import (
    DRY_RUN_OPTION,
    Backends,
    Pending,
    RunStatus,
    Stage,
    TrainingPlanned,
)
from vmt.pipeline.results import EvaluateResult, StageResult
from vmt.pipeline.run_config import RunConfig
from vmt.pipeline.stage_driver import StageDriver
from vmt.pipeline.store import RunRecord, RunState, RunStore, StageState
from vmt.pipeline.waiting import sleep_in_slices
from vmt.retry import Backoff, retry_call

T = TypeVar("T")

log = logging.getLogger("vmt")

BackendsFactory = Callable[[RunConfig, Settings], Backends]
"""Builds a run's backends from its configuration (``vmt.backends.factory.build_backends``);
the CLI and the service pass it in, so the pipeline imports no backend."""

CANCELLED_MESSAGE = "Run cancelled by a user (vmt cancel); start a new run to train again."


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.retryable


@dataclass(frozen=True, slots=True)
class Advanced:
    """Where ``Runner.advance_once`` left a run: its record, and the seconds after which to
    advance it again (None: nothing more to do: complete, failed, cancelled or planned)."""

    run: RunRecord
    again_in: float | None


class StoreLedger:
    """The run store as a ``StageLedger`` (stage results and handles of one run)."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self._store = store
        self._run_id = run_id

    def stage_result(self, stage: Stage) -> Mapping[str, Any] | None:
        record = self._store.stage(self._run_id, stage)
        return record.outputs if record.state is StageState.DONE else None

    def record_result(self, stage: Stage, result: StageResult) -> None:
        self._store.finish_stage(self._run_id, stage, result.to_json())

    def handles(self) -> Mapping[str, str]:
        return self._store.handles(self._run_id)


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
        self._polling: dict[str, tuple[Stage, str]] = {}
        """Run -> the stage this process started and is polling (not reported again), and
        what it last waited on."""

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

    def advance_once(self, run_id: str) -> Advanced:
        """Advance ``run_id`` as far as it goes without waiting: run its remaining stages until
        it ends (COMPLETE, FAILED, CANCELLED, or PLANNED when a dry run stopped before
        launching) or the trainer answers ``Pending``; then release the run and say when to
        come back (what the service's worker schedules). A PLANNED run is launched: its
        dry-run option is turned off first. Raises ``RunConflictError`` when another process
        is advancing it."""
        return self._advance(run_id, wait=None)

    def advance(self, run_id: str, *, sleep: Callable[[float], None] = time.sleep) -> RunRecord:
        """Advance ``run_id`` to its end, holding it all along and waiting (``sleep``) between
        looks at the trainer's job as the trainer asks; a cancel request cuts a wait short.
        For a terminal that has nothing else to do (``vmt run``, ``vmt resume``). Returns the
        final record; raises ``RunConflictError`` when another process is advancing it."""
        return self._advance(run_id, wait=sleep).run

    def _advance(self, run_id: str, *, wait: Callable[[float], None] | None) -> Advanced:
        run = self.store.get_run(run_id)
        if run.state is RunState.COMPLETE:
            return Advanced(run, None)
        if run.state is RunState.CANCELLED:
            raise InputError(f"run {run_id} was cancelled; start a new run to train again")
        holder = self._acquire(run_id)
        pending: Pending | None = None
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
                pending = self._advance_locked(ctx)
                while pending is not None and wait is not None:
                    sleep_in_slices(
                        pending.seconds,
                        stop=lambda: heartbeat.cancelled.is_set() or heartbeat.lost.is_set(),
                        sleep=wait,
                    )
                    pending = self._advance_locked(ctx)
        finally:
            self.store.release_lease(run_id, holder)
        record = self.store.get_run(run_id)
        if pending is None or record.state in _ENDED:
            return Advanced(record, None)
        return Advanced(record, pending.seconds)

    resume = advance

    def reopen(self, run_id: str) -> RunRecord:
        """Make a FAILED or PLANNED run advanceable again (PENDING; a planned run with its
        dry-run option off, so advancing it launches the training), for a scheduler to
        advance. Raises ``InputError`` for a complete or cancelled run."""
        run = self.store.get_run(run_id)
        if run.state in (RunState.COMPLETE, RunState.CANCELLED):
            raise InputError(f"run {run_id} is {run.state.value}: nothing to resume")
        if run.state is RunState.PLANNED:
            self._launch_planned(run)
        elif run.state is RunState.FAILED:
            self.store.set_run_state(run_id, RunState.PENDING)
            self.store.add_event(run_id, "run resumed")
        return self.store.get_run(run_id)

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
            driver = StageDriver(
                backends, ctx, StoreLedger(self.store, run_id), trainer_kind=run.config.trainer.kind
            )
            self._finish_cancel(ctx, driver)
            self._forget_polls(run_id)
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

    def _advance_locked(self, ctx: StoreRunContext) -> Pending | None:
        run_id = ctx.run_id
        run = self.store.get_run(run_id)
        driver: StageDriver | None = None
        try:
            backends = self._factory(run.config, self.settings)
            driver = StageDriver(
                backends, ctx, StoreLedger(self.store, run_id), trainer_kind=run.config.trainer.kind
            )
            if self.store.cancel_requested(run_id):
                raise RunCancelled(f"run {run_id} was cancelled", run_id=run_id)
            resumed = run_id not in self._polling
            if resumed:
                ctx.event("advancing run", state=run.state.value)
            for stage in stages_in_order():
                record = self.store.stage(run_id, stage)
                ctx.stage = stage
                if record.state is StageState.DONE:
                    if resumed:
                        ctx.event("stage already done; not redone")
                    continue
                ctx.check_cancelled()
                last = self._polling.get(run_id)
                polling = last is not None and last[0] is stage
                if not polling:
                    self._retrying(
                        ctx, f"status {stage}", functools.partial(driver.report_started, stage)
                    )
                    self.store.start_stage(run_id, stage)
                    ctx.event("stage started", attempt=record.attempts + 1)
                outcome = self._retrying(
                    ctx, f"stage {stage}", functools.partial(driver.run, stage)
                )
                if isinstance(outcome, Pending):
                    if last is None or last != (stage, outcome.what):
                        ctx.event("waiting on the trainer's job", what=outcome.what)
                    self._polling[run_id] = (stage, outcome.what)
                    return outcome
                self._polling.pop(run_id, None)
            ctx.stage = None
            self.store.set_metrics(run_id, self.store.result(run_id, EvaluateResult).to_json())
            self._retrying(ctx, "status COMPLETE", lambda: driver.report(RunStatus.COMPLETE, None))
            self.store.set_run_state(run_id, RunState.COMPLETE)
            ctx.event("run complete")
        except TrainingPlanned as planned:
            self._plan(ctx, planned)
        except RunCancelled:
            self._finish_cancel(ctx, driver)
        except RunConflictError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and reported
            self._fail(ctx, driver, exc)
        self._forget_polls(run_id)
        return None

    def _forget_polls(self, run_id: str) -> None:
        self._polling.pop(run_id, None)

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

    def _fail(self, ctx: StoreRunContext, driver: StageDriver | None, exc: Exception) -> None:
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
        if driver is not None:
            self._report_quietly(ctx, driver, message)

    def _finish_cancel(self, ctx: StoreRunContext, driver: StageDriver | None) -> None:
        run_id = ctx.run_id
        if (
            ctx.stage is not None
            and self.store.stage(run_id, ctx.stage).state is StageState.RUNNING
        ):
            self.store.fail_stage(run_id, ctx.stage, "cancelled")
        if driver is not None:
            trainer = driver.backends.trainer
            try:
                self._retrying(ctx, "cancel", lambda: trainer.cancel(ctx))
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
        if driver is not None:
            self._report_quietly(ctx, driver, CANCELLED_MESSAGE)

    def _report_quietly(self, ctx: StoreRunContext, driver: StageDriver, error: str) -> None:
        """Report a final FAILED status; a failure to report is recorded, never raised over
        the error being reported."""
        status = RunStatus.FAILED
        try:
            self._retrying(ctx, f"status {status}", lambda: driver.report(status, ctx.stage, error))
        except Exception as exc:  # noqa: BLE001 - must not hide the error being reported
            log.warning("run %s: could not report status %s: %s", ctx.run_id, status, exc)
            self.store.add_error(
                ctx.run_id,
                stage=ctx.stage,
                kind=type(exc).__name__,
                message=f"reporting status {status} failed: {exc}",
                retryable=False,
            )


_ENDED = frozenset({RunState.COMPLETE, RunState.FAILED, RunState.CANCELLED, RunState.PLANNED})


def stages_in_order() -> tuple[Stage, ...]:
    return tuple(Stage)
