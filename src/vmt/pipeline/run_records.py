"""The records the run store returns: runs, stages, events and errors, with their states."""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from vmt.errors import InputError
from vmt.pipeline.lease import Lease, LeaseHolder
from vmt.pipeline.protocols import Stage
from vmt.pipeline.results import EvaluateResult, Headline, evaluation_of
from vmt.pipeline.run_config import RunConfig


class RunState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PLANNED = "planned"
    """A dry run ended before launching training (not a failure); ``vmt resume`` launches it."""
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (RunState.COMPLETE, RunState.CANCELLED)


class StageState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class UnknownRunError(InputError):
    """No run with this id in the store."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    created: float
    updated: float
    state: RunState
    stage: Stage | None
    config: RunConfig
    metrics: dict[str, Any]
    error: str | None
    cancel_requested: bool
    lease: Lease | None

    def is_active(self, now: float | None = None) -> bool:
        """True while a live process holds the run's lease (it is being advanced)."""
        return self.lease is not None and not self.lease.is_stale(now)

    @property
    def evaluation(self) -> EvaluateResult | None:
        """The run's metrics summary (the evaluate stage's result); None before it ran."""
        return evaluation_of(self.metrics)

    def headline(self) -> Headline | None:
        """The run's headline figures (``EvaluateResult.headline``); None before evaluation."""
        evaluation = self.evaluation
        return evaluation.headline() if evaluation is not None else None


@dataclass(frozen=True, slots=True)
class StageRecord:
    stage: Stage
    state: StageState = StageState.PENDING
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    progress_done: int | None = None
    progress_total: int | None = None

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    ts: float
    stage: Stage | None
    message: str
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> EventRecord:
        stage = stage_or_none(row["stage"])
        return cls(row["id"], row["ts"], stage, row["message"], orjson.loads(row["data"]))


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    ts: float
    stage: Stage | None
    kind: str
    message: str
    retryable: bool

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ErrorRecord:
        stage = stage_or_none(row["stage"])
        return cls(row["ts"], stage, row["kind"], row["message"], bool(row["retryable"]))


def new_run_id() -> str:
    """Sortable by creation time, unique without coordination: ``20250101-120000-3fa2c1``."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def stage_or_none(value: str | None) -> Stage | None:
    return Stage(value) if value else None


def run_record_from_row(row: sqlite3.Row) -> RunRecord:
    lease = None
    if row["lease_owner"] is not None:
        lease = Lease(LeaseHolder.parse(row["lease_owner"]), float(row["lease_expires"]))
    return RunRecord(
        id=row["id"],
        created=row["created"],
        updated=row["updated"],
        state=RunState(row["state"]),
        stage=stage_or_none(row["stage"]),
        config=RunConfig.from_json(row["config"]),
        metrics=orjson.loads(row["metrics"]),
        error=row["error"],
        cancel_requested=bool(row["cancel_requested"]),
        lease=lease,
    )


def stage_record_from_row(stage: Stage, row: sqlite3.Row | None) -> StageRecord:
    if row is None:
        return StageRecord(stage)
    return StageRecord(
        stage=stage,
        state=StageState(row["state"]),
        started=row["started"],
        finished=row["finished"],
        attempts=row["attempts"],
        outputs=orjson.loads(row["outputs"]),
        error=row["error"],
        progress_done=row["progress_done"],
        progress_total=row["progress_total"],
    )
