"""The lease that keeps two processes from advancing the same run.

A lease is an owner token (``host:pid:nonce``) and an expiry time stored on the run's row. The
advancing process renews it from a heartbeat thread; a lease is stale once it has expired, or at
once when its owner is a process of this host that no longer exists (a ``kill -9``ed run can be
resumed immediately instead of waiting for the expiry).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

log = logging.getLogger("vmt")


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    host: str
    pid: int
    nonce: str

    @classmethod
    def for_this_process(cls) -> LeaseHolder:
        return cls(socket.gethostname(), os.getpid(), secrets.token_hex(4))

    @classmethod
    def parse(cls, token: str) -> LeaseHolder:
        host, _, rest = token.rpartition(":")
        host, _, pid = host.rpartition(":")
        try:
            return cls(host, int(pid), rest)
        except ValueError:
            return cls(token, -1, "")

    @property
    def token(self) -> str:
        return f"{self.host}:{self.pid}:{self.nonce}"

    def is_gone(self) -> bool:
        """True when the holder is a process on this host that has exited."""
        if self.host != socket.gethostname() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}"


@dataclass(frozen=True, slots=True)
class Lease:
    holder: LeaseHolder
    expires: float

    def is_stale(self, now: float | None = None) -> bool:
        return self.expires <= (time.time() if now is None else now) or self.holder.is_gone()

    def describe(self) -> str:
        until = datetime.fromtimestamp(self.expires).strftime("%H:%M:%S")
        return f"{self.holder.describe()} (lease renewed until {until})"


class Heartbeat:
    """Renews a lease every ``interval`` seconds in a daemon thread and polls the cancel flag.

    ``lost`` is set when a renewal finds the lease taken by someone else; ``cancelled`` when
    the run was cancelled. The advancing thread reads both through ``RunContext``.
    """

    def __init__(
        self,
        *,
        renew: Callable[[], bool],
        poll_cancel: Callable[[], bool],
        interval: float,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.lost = threading.Event()
        self.cancelled = threading.Event()
        self._renew = renew
        self._poll_cancel = poll_cancel
        self._interval = interval
        self._on_exit = on_exit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vmt-lease-heartbeat", daemon=True)

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                self.beat()
        finally:
            if self._on_exit is not None:
                self._on_exit()

    def beat(self) -> None:
        try:
            if not self._renew():
                self.lost.set()
            if self._poll_cancel():
                self.cancelled.set()
        except sqlite3.Error as exc:
            log.warning("lease heartbeat failed (%s); will try again", exc)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
