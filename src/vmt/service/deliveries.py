"""One run per Labelbox model run, however many deliveries arrive and however concurrently.

The gate is a SQLite row keyed by ``model_run_id`` (PRIMARY KEY, so UNIQUE): the delivery whose
INSERT wins creates the run and records its id; every other delivery, in this process or
another, waits for that id and answers with it. No check-then-insert race is possible because
the check *is* the insert.

A claim names its owner (host, process id, and a token of that process's life). A claim whose
owner is known dead (same host, and its process is gone or is this process under a new life)
is taken over by the next delivery at once; any other claim only after
``stale_claim_seconds``. At start-up ``recover`` settles what dead owners left: a run they
created is marked started (and resumed by the worker), a claim without a run is released.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from vmt.errors import BackendError
from vmt.sqlite_db import ThreadConnections, connect

log = logging.getLogger("vmt")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_run_deliveries (
    model_run_id TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL UNIQUE,
    model_type   TEXT NOT NULL,
    model_id     TEXT,
    started      INTEGER NOT NULL DEFAULT 0,
    claim        TEXT NOT NULL,
    claimed_at   REAL NOT NULL,
    deliveries   INTEGER NOT NULL DEFAULT 1,
    owner        TEXT NOT NULL DEFAULT ''
)
"""

_LIFE = uuid.uuid4().hex
"""This process's life: a process id reused after a restart (PID 1 in a container) has another."""


def this_owner() -> str:
    """``HOST:PID:LIFE`` of this process, as claims record their owner."""
    return f"{socket.gethostname()}:{os.getpid()}:{_LIFE}"


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` (``HOST:PID:LIFE``) is a process of this host that is gone, or this
    process's id under an earlier life; False when alive or not knowable (another host)."""
    host, _, rest = owner.partition(":")
    pid_text, _, life = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return life != _LIFE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class DeliveryStore:
    """Maps each Labelbox model run id to the one run created for it."""

    def __init__(
        self,
        path: Path,
        *,
        wait_seconds: float = 10.0,
        stale_claim_seconds: float = 60.0,
    ) -> None:
        self.path = path
        self.wait_seconds = wait_seconds
        self.stale_claim_seconds = stale_claim_seconds
        self._serial = threading.RLock()
        self._connections = ThreadConnections(path)
        with self._connect() as db:
            db.execute(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(model_run_deliveries)")}
            if "owner" not in columns:
                db.execute(
                    "ALTER TABLE model_run_deliveries ADD COLUMN owner TEXT NOT NULL DEFAULT ''"
                )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection (``vmt.sqlite_db``: WAL, ``synchronous=FULL``), used under
        this store's lock: the threads of one process queue on it instead of in SQLite's busy
        handler, which sleeps up to 100 ms between tries. Other processes still meet the busy
        timeout."""
        with self._serial:
            yield self._connections.get()

    def close(self) -> None:
        """Close every connection (threads that use the store afterwards reopen one)."""
        self._connections.close_all()

    def ping(self) -> None:
        """Raise ``BackendError`` when the store cannot be read (probed on a new connection)."""
        try:
            db = connect(self.path, timeout=5.0)
            try:
                db.execute("SELECT count(*) FROM model_run_deliveries").fetchone()
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise BackendError(f"delivery store unreachable: {exc}", retryable=True) from exc

    def run_ids(self) -> set[str]:
        """Every run id created through a delivery."""
        with self._connect() as db:
            rows = db.execute("SELECT run_id FROM model_run_deliveries WHERE started = 1")
            return {row[0] for row in rows}

    def recover(self, run_exists: Callable[[str], bool]) -> list[str]:
        """Settle the claims dead owners left (``owner_is_dead``): a run that exists
        (``run_exists(run_id)``) is marked started, a claim without one is released. Returns
        the run ids marked started (for the worker to resume)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT model_run_id, run_id, claim, owner FROM model_run_deliveries"
                " WHERE started = 0"
            ).fetchall()
        recovered: list[str] = []
        for model_run_id, run_id, claim, owner in rows:
            if not owner_is_dead(owner):
                continue
            exists = run_exists(run_id)
            with self._connect() as db:
                if exists:
                    db.execute(
                        "UPDATE model_run_deliveries SET started = 1, owner = ?"
                        " WHERE model_run_id = ? AND claim = ?",
                        (this_owner(), model_run_id, claim),
                    )
                    recovered.append(str(run_id))
                else:
                    db.execute(
                        "DELETE FROM model_run_deliveries WHERE model_run_id = ? AND claim = ?",
                        (model_run_id, claim),
                    )
            log.warning(
                "model run %s: %s the claim of a process that died",
                model_run_id,
                f"run {run_id} created, resuming it after" if exists else "released",
            )
        return recovered

    def delivery_count(self, model_run_id: str) -> int:
        """How many deliveries arrived for ``model_run_id`` (0 when none)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT deliveries FROM model_run_deliveries WHERE model_run_id = ?",
                (model_run_id,),
            ).fetchone()
        return int(row[0]) if row else 0

    def create_or_get(
        self,
        *,
        model_run_id: str,
        model_type: str,
        model_id: str | None,
        new_run_id: Callable[[], str],
        start: Callable[[str], None],
    ) -> tuple[str, bool]:
        """The run for ``model_run_id`` and whether this call started it.

        The run id is chosen and recorded with the claim, then ``start(run_id)`` creates the
        run. ``start`` must be idempotent for one run id: a delivery that finds a claim older
        than ``stale_claim_seconds``, or one whose owner is known dead, takes it over and calls
        it again.
        If ``start`` raises, the claim is released so a later delivery can try again.
        """
        deadline = time.monotonic() + self.wait_seconds
        while True:
            claim = uuid.uuid4().hex
            with self._connect() as db:
                inserted = db.execute(
                    "INSERT INTO model_run_deliveries"
                    " (model_run_id, run_id, model_type, model_id, claim, claimed_at, owner)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(model_run_id) DO NOTHING",
                    (
                        model_run_id,
                        new_run_id(),
                        model_type,
                        model_id,
                        claim,
                        time.time(),
                        this_owner(),
                    ),
                ).rowcount
                outcome = "won" if inserted else self._existing(db, model_run_id, claim)
            if outcome not in ("won", "wait"):
                return outcome, False
            if outcome == "won":
                return self._start(model_run_id, claim, start), True
            if time.monotonic() > deadline:
                raise BackendError(
                    f"model run {model_run_id} is still being created by another delivery",
                    retryable=True,
                )
            time.sleep(0.005)

    def _existing(self, db: sqlite3.Connection, model_run_id: str, claim: str) -> str:
        """The started run's id, ``"won"`` when this caller took over a stale claim, else
        ``"wait"``."""
        row = db.execute(
            "SELECT run_id, started, claim, claimed_at, owner FROM model_run_deliveries"
            " WHERE model_run_id = ?",
            (model_run_id,),
        ).fetchone()
        if row is None:  # released by a failed creator between our INSERT and SELECT
            return "wait"
        run_id, started, old_claim, claimed_at, owner = row
        if started:
            db.execute(
                "UPDATE model_run_deliveries SET deliveries = deliveries + 1"
                " WHERE model_run_id = ?",
                (model_run_id,),
            )
            return str(run_id)
        dead = owner_is_dead(owner)
        if not dead and time.time() - claimed_at < self.stale_claim_seconds:
            return "wait"
        took = db.execute(
            "UPDATE model_run_deliveries SET claim = ?, claimed_at = ?, owner = ?"
            " WHERE model_run_id = ? AND started = 0 AND claim = ?",
            (claim, time.time(), this_owner(), model_run_id, old_claim),
        ).rowcount
        if took:
            why = "its process is gone" if dead else "stale"
            log.warning("taking over the claim for model run %s (%s)", model_run_id, why)
            return "won"
        return "wait"

    def _start(self, model_run_id: str, claim: str, start: Callable[[str], None]) -> str:
        with self._connect() as db:
            row = db.execute(
                "SELECT run_id FROM model_run_deliveries WHERE model_run_id = ? AND claim = ?",
                (model_run_id, claim),
            ).fetchone()
        if row is None:
            raise BackendError(f"lost the claim on model run {model_run_id}", retryable=True)
        run_id = str(row[0])
        try:
            start(run_id)
        except BaseException:
            with self._connect() as db:
                db.execute(
                    "DELETE FROM model_run_deliveries WHERE model_run_id = ? AND claim = ?",
                    (model_run_id, claim),
                )
            raise
        with self._connect() as db:
            db.execute(
                "UPDATE model_run_deliveries SET started = 1 WHERE model_run_id = ? AND claim = ?",
                (model_run_id, claim),
            )
        return run_id
