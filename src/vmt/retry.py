"""Retrying transient failures: exponential backoff with full jitter, bounded by a deadline.

One implementation for every backend (Labelbox rate limits, GCS, Vertex polling, image fetches)
and for the runner. The clock, the sleep and the random source are injectable so tests run
instantly and deterministically.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("vmt")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays ``uniform(0, min(cap, base * 2**attempt))``, giving up once ``deadline`` seconds
    have passed since the first attempt or after ``max_attempts`` attempts."""

    base: float = 0.5
    cap: float = 30.0
    deadline: float = 300.0
    max_attempts: int = 100
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0.0, min(self.cap, self.base * (2.0**attempt)))


def retry_call(
    fn: Callable[[], T],
    *,
    is_retryable: Callable[[BaseException], bool],
    backoff: Backoff | None = None,
    describe: str = "call",
) -> T:
    """Call ``fn`` until it succeeds, a non-retryable error is raised, or the budget runs out
    (then the last error is re-raised unchanged)."""
    policy = backoff or Backoff()
    started = policy.clock()
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            attempt += 1
            if not is_retryable(exc) or attempt >= policy.max_attempts:
                raise
            pause = policy.delay(attempt - 1)
            if policy.clock() + pause - started > policy.deadline:
                raise
            log.warning(
                "%s failed (%s); retry %d in %.1fs", describe, type(exc).__name__, attempt, pause
            )
            policy.sleep(pause)
