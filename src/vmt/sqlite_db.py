"""The one way this package opens a SQLite database it keeps state in (the run store, the
service's delivery gate): one connection per thread, WAL, and one durability setting.

Durability: ``PRAGMA synchronous=FULL`` in WAL mode. A transaction is on disk (the WAL is
fsynced) when its COMMIT returns, so what a run recorded, or the delivery that claimed a model
run, survives a process crash AND a power loss. (NORMAL would survive a process crash only.)
Connections are in autocommit mode (``isolation_level=None``): callers open transactions with
``transaction`` (``BEGIN IMMEDIATE``, so writers queue on the busy timeout instead of failing).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SYNCHRONOUS = "FULL"
BUSY_TIMEOUT_SECONDS = 30.0


def connect(path: Path, *, timeout: float = BUSY_TIMEOUT_SECONDS) -> sqlite3.Connection:
    """A connection to ``path`` with WAL, ``synchronous=FULL``, the busy timeout and rows as
    ``sqlite3.Row``. Raises ``sqlite3.Error``."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One IMMEDIATE transaction: committed on return, rolled back on error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class ThreadConnections:
    """One connection per thread to one database file, kept open (closing the last connection
    of a WAL database checkpoints it: an fsync per request)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []

    def get(self) -> sqlite3.Connection:
        """The calling thread's connection (opened on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close_thread(self) -> None:
        """Close the calling thread's connection (threads that end call this)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            with self._lock:
                self._all.remove(conn)
            conn.close()
            self._local.conn = None

    def close_all(self) -> None:
        """Close every thread's connection (threads that go on reopen one)."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
