"""The run store: one SQLite file under the state dir, plus one folder per run.

Tables: ``runs`` (state, config snapshot, metrics summary, error, lease, cancel flag),
``stages`` (state, timings, attempts, outputs, progress), ``handles`` (external resources),
``events`` (timestamped history) and ``errors`` (every failure, retried or not). Every write
commits before the method returns, so whatever a stage recorded survives a crash of the process.
Each thread gets its own connection (the lease heartbeat runs in a thread of its own), opened
by ``vmt.sqlite_db`` (WAL, ``synchronous=FULL``: a commit is on disk when it returns).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson

from vmt.config import Settings
from vmt.errors import InputError
from vmt.formats.image_uri import redact_urls, redact_values
from vmt.pipeline.lease import Lease, LeaseHolder
from vmt.pipeline.protocols import Stage
from vmt.pipeline.results import StageResult
from vmt.pipeline.run_config import RunConfig
from vmt.pipeline.run_records import (
    ErrorRecord,
    EventRecord,
    RunRecord,
    RunState,
    StageRecord,
    StageState,
    UnknownRunError,
    new_run_id,
    run_record_from_row,
    stage_record_from_row,
)
from vmt.pipeline.store_schema import SCHEMA, SCHEMA_VERSION
from vmt.sqlite_db import ThreadConnections, transaction

R = TypeVar("R", bound=StageResult)

__all__ = [
    "ErrorRecord",
    "EventRecord",
    "RunRecord",
    "RunState",
    "RunStore",
    "StageRecord",
    "StageState",
    "UnknownRunError",
    "new_run_id",
]


def _json(value: Mapping[str, Any]) -> str:
    return orjson.dumps(value, default=str).decode()


class RunStore:
    """All persistent state of runs. Safe to share between threads and processes."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.runs_dir = db_path.parent / "runs"
        self._connections = ThreadConnections(db_path)
        self._writes = threading.RLock()
        self._conn().executescript(
            f"BEGIN IMMEDIATE;\n{SCHEMA}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
        )

    @classmethod
    def for_settings(cls, settings: Settings) -> RunStore:
        return cls(settings.state_dir / "runs.sqlite")

    # --- connections (vmt.sqlite_db: one per thread, WAL, synchronous=FULL) --------------
    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction under this store's lock: the threads of one process (the
        service's request threads creating runs, its worker advancing them) queue on it, not
        in SQLite's busy handler, which sleeps up to 100 ms between tries (p99 of a webhook
        under load: 944 ms without it). Other processes still meet the busy timeout."""
        with self._writes, transaction(self._conn()) as conn:
            yield conn

    def close_thread_connection(self) -> None:
        """Close the calling thread's connection (threads that end call this)."""
        self._connections.close_thread()

    def close(self) -> None:
        self._connections.close_all()

    # --- runs ----------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def create_run(self, config: RunConfig, *, run_id: str | None = None) -> str:
        run_id = run_id or new_run_id()
        now = time.time()
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO runs (id, created, updated, state, config) VALUES (?, ?, ?, ?, ?)",
                (run_id, now, now, RunState.PENDING.value, config.to_json()),
            )
            conn.executemany(
                "INSERT INTO stages (run_id, stage, state) VALUES (?, ?, ?)",
                [(run_id, stage.value, StageState.PENDING.value) for stage in Stage],
            )
            conn.execute(
                "INSERT INTO events (run_id, ts, stage, message, data) VALUES (?, ?, NULL, ?, ?)",
                (run_id, now, "run created", _json({"label": config.label})),
            )
        self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        return run_id

    def get_run(self, run_id: str) -> RunRecord:
        row = self._conn().execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UnknownRunError(f"no run {run_id!r} in {self.db_path} (`vmt runs` lists them)")
        return run_record_from_row(row)

    def list_runs(self, *, limit: int | None = None) -> list[RunRecord]:
        sql = "SELECT * FROM runs ORDER BY created DESC, id DESC"
        params: tuple[int, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        return [run_record_from_row(row) for row in self._conn().execute(sql, params)]

    def page_runs(
        self, *, state: RunState | None = None, limit: int, offset: int = 0
    ) -> list[RunRecord]:
        """One page of runs, newest first, optionally only those in ``state`` (an index
        answers both orders: the cost does not grow with the number of runs before the page)."""
        where, params = ("WHERE state = ?", [state.value]) if state else ("", [])
        sql = f"SELECT * FROM runs {where} ORDER BY created DESC, id DESC LIMIT ? OFFSET ?"
        rows = self._conn().execute(sql, (*params, limit, offset))
        return [run_record_from_row(row) for row in rows]

    def count_runs(self, *, state: RunState | None = None) -> int:
        """How many runs the store holds (in ``state`` when given)."""
        where, params = ("WHERE state = ?", (state.value,)) if state else ("", ())
        row = self._conn().execute(f"SELECT COUNT(*) FROM runs {where}", params).fetchone()
        return int(row[0])

    def stages_of(self, run_ids: list[str]) -> dict[str, dict[Stage, StageRecord]]:
        """The stage records of several runs in one query (a page of the runs list)."""
        found: dict[str, dict[Stage, StageRecord]] = {run_id: {} for run_id in run_ids}
        if not run_ids:
            return found
        marks = ",".join("?" * len(run_ids))
        rows = self._conn().execute(f"SELECT * FROM stages WHERE run_id IN ({marks})", run_ids)
        for row in rows:
            stage = Stage(row["stage"])
            found[row["run_id"]][stage] = stage_record_from_row(stage, row)
        return found

    def handles_of(self, run_ids: list[str], key: str) -> dict[str, str]:
        """The handle ``key`` of each of several runs that has it."""
        if not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        rows = self._conn().execute(
            f"SELECT run_id, value FROM handles WHERE key = ? AND run_id IN ({marks})",
            (key, *run_ids),
        )
        return {row["run_id"]: row["value"] for row in rows}

    def set_run_state(
        self, run_id: str, state: RunState, *, stage: Stage | None = None, error: str | None = None
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE runs SET state = ?, stage = COALESCE(?, stage), error = ?, updated = ?"
                " WHERE id = ?",
                (
                    state.value,
                    stage.value if stage else None,
                    None if error is None else redact_urls(error),
                    time.time(),
                    run_id,
                ),
            )

    def set_metrics(self, run_id: str, metrics: Mapping[str, Any]) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE runs SET metrics = ?, updated = ? WHERE id = ?",
                (_json(metrics), time.time(), run_id),
            )

    def set_config(self, run_id: str, config: RunConfig) -> None:
        """Replace the run's configuration (a planned run launched: its dry-run option off)."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE runs SET config = ?, updated = ? WHERE id = ?",
                (config.to_json(), time.time(), run_id),
            )

    def request_cancel(self, run_id: str) -> None:
        self.get_run(run_id)
        with self._tx() as conn:
            conn.execute(
                "UPDATE runs SET cancel_requested = 1, updated = ? WHERE id = ?",
                (time.time(), run_id),
            )

    def cancel_requested(self, run_id: str) -> bool:
        row = (
            self._conn()
            .execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,))
            .fetchone()
        )
        return bool(row and row[0])

    # --- stages --------------------------------------------------------------------------
    def stages(self, run_id: str) -> list[StageRecord]:
        rows = {
            row["stage"]: row
            for row in self._conn().execute("SELECT * FROM stages WHERE run_id = ?", (run_id,))
        }
        return [stage_record_from_row(stage, rows.get(stage.value)) for stage in Stage]

    def stage(self, run_id: str, stage: Stage) -> StageRecord:
        row = (
            self._conn()
            .execute("SELECT * FROM stages WHERE run_id = ? AND stage = ?", (run_id, stage.value))
            .fetchone()
        )
        return stage_record_from_row(stage, row)

    def result(self, run_id: str, kind: type[R]) -> R:
        """The typed result of a finished stage (``kind.stage``). Raises ``InputError`` when
        that stage has not finished."""
        record = self.stage(run_id, kind.stage)
        if record.state is not StageState.DONE:
            raise InputError(f"run {run_id}: stage {kind.stage} has not finished")
        return kind.from_json(record.outputs)

    def start_stage(self, run_id: str, stage: Stage) -> None:
        now = time.time()
        with self._tx() as conn:
            conn.execute(
                "UPDATE stages SET state = ?, started = ?, finished = NULL, error = NULL,"
                " attempts = attempts + 1, progress_done = NULL, progress_total = NULL"
                " WHERE run_id = ? AND stage = ?",
                (StageState.RUNNING.value, now, run_id, stage.value),
            )
            conn.execute(
                "UPDATE runs SET state = ?, stage = ?, error = NULL, updated = ? WHERE id = ?",
                (RunState.RUNNING.value, stage.value, now, run_id),
            )

    def finish_stage(self, run_id: str, stage: Stage, outputs: Mapping[str, Any]) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE stages SET state = ?, finished = ?, outputs = ?"
                " WHERE run_id = ? AND stage = ?",
                (StageState.DONE.value, time.time(), _json(outputs), run_id, stage.value),
            )

    def reset_stage(self, run_id: str, stage: Stage) -> None:
        """Back to pending (a dry run stopped before the stage's work was launched)."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE stages SET state = ?, finished = NULL, error = NULL,"
                " progress_done = NULL, progress_total = NULL WHERE run_id = ? AND stage = ?",
                (StageState.PENDING.value, run_id, stage.value),
            )

    def fail_stage(self, run_id: str, stage: Stage, error: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE stages SET state = ?, finished = ?, error = ?"
                " WHERE run_id = ? AND stage = ?",
                (StageState.FAILED.value, time.time(), redact_urls(error), run_id, stage.value),
            )

    def set_progress(self, run_id: str, stage: Stage, done: int, total: int | None) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE stages SET progress_done = ?, progress_total = ?"
                " WHERE run_id = ? AND stage = ?",
                (done, total, run_id, stage.value),
            )

    # --- handles, events, errors ---------------------------------------------------------
    def set_handle(self, run_id: str, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO handles (run_id, key, value, updated) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value,"
                " updated = excluded.updated",
                (run_id, key, value, time.time()),
            )

    def get_handle(self, run_id: str, key: str) -> str | None:
        row = (
            self._conn()
            .execute("SELECT value FROM handles WHERE run_id = ? AND key = ?", (run_id, key))
            .fetchone()
        )
        return None if row is None else str(row[0])

    def handles(self, run_id: str) -> dict[str, str]:
        rows = self._conn().execute(
            "SELECT key, value FROM handles WHERE run_id = ? ORDER BY updated, key", (run_id,)
        )
        return {row["key"]: row["value"] for row in rows}

    def add_event(
        self,
        run_id: str,
        message: str,
        *,
        stage: Stage | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO events (run_id, ts, stage, message, data) VALUES (?, ?, ?, ?, ?)",
                (
                    run_id,
                    time.time(),
                    stage.value if stage else None,
                    redact_urls(message),
                    _json(redact_values(data or {})),
                ),
            )

    def events(self, run_id: str, *, last: int | None = None) -> list[EventRecord]:
        """The run's events, oldest first; only the ``last`` ones when given (read through the
        index from the end: the run page of a run with 100k events reads ``last`` rows)."""
        return [EventRecord.from_row(row) for row in self._oldest_first("events", run_id, last)]

    def count_events(self, run_id: str) -> int:
        row = self._conn().execute("SELECT COUNT(*) FROM events WHERE run_id = ?", (run_id,))
        return int(row.fetchone()[0])

    def add_error(
        self, run_id: str, *, stage: Stage | None, kind: str, message: str, retryable: bool
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO errors (run_id, ts, stage, kind, message, retryable)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    time.time(),
                    stage.value if stage else None,
                    kind,
                    redact_urls(message),
                    retryable,
                ),
            )

    def errors(self, run_id: str, *, last: int | None = None) -> list[ErrorRecord]:
        """The run's errors, oldest first; only the ``last`` ones when given."""
        return [ErrorRecord.from_row(row) for row in self._oldest_first("errors", run_id, last)]

    def _oldest_first(self, table: str, run_id: str, last: int | None) -> list[sqlite3.Row]:
        if last is None:
            sql = f"SELECT * FROM {table} WHERE run_id = ? ORDER BY id"
            return list(self._conn().execute(sql, (run_id,)))
        sql = f"SELECT * FROM {table} WHERE run_id = ? ORDER BY id DESC LIMIT ?"
        return list(self._conn().execute(sql, (run_id, max(0, last))))[::-1]

    # --- lease ---------------------------------------------------------------------------
    def try_acquire_lease(self, run_id: str, holder: LeaseHolder, ttl: float) -> Lease | None:
        """Take the run's lease for ``holder`` unless a live holder has it; returns the lease
        now in force when it is someone else's (None when ``holder`` got it)."""
        now = time.time()
        with self._tx() as conn:
            row = conn.execute(
                "SELECT lease_owner, lease_expires FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise UnknownRunError(f"no run {run_id!r} in {self.db_path}")
            if row["lease_owner"] is not None and row["lease_owner"] != holder.token:
                current = Lease(LeaseHolder.parse(row["lease_owner"]), float(row["lease_expires"]))
                if not current.is_stale(now):
                    return current
            conn.execute(
                "UPDATE runs SET lease_owner = ?, lease_expires = ? WHERE id = ?",
                (holder.token, now + ttl, run_id),
            )
        return None

    def renew_lease(self, run_id: str, holder: LeaseHolder, ttl: float) -> bool:
        """Extend the lease; False when ``holder`` no longer has it."""
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE runs SET lease_expires = ? WHERE id = ? AND lease_owner = ?",
                (time.time() + ttl, run_id, holder.token),
            )
            return cursor.rowcount == 1

    def release_lease(self, run_id: str, holder: LeaseHolder) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE runs SET lease_owner = NULL, lease_expires = NULL"
                " WHERE id = ? AND lease_owner = ?",
                (run_id, holder.token),
            )
