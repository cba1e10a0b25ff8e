"""Waiting on a trainer's answer where a caller has nothing else to do.

A trainer answers ``Pending`` while its job runs (``vmt.pipeline.protocols``). The service's
worker schedules the next call instead of waiting; a terminal command (``vmt run``,
``vmt select`` on a pool, a Vertex AI pipeline step) has nothing else to do and waits here,
checking for cancellation while it does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from vmt.pipeline.protocols import Pending, RunContext

T = TypeVar("T")

CHECK_SECONDS = 1.0
"""Longest sleep between two cancellation checks while waiting."""


def wait_for(
    call: Callable[[], T | Pending],
    ctx: RunContext,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``call`` until it answers something other than ``Pending``, sleeping as long as
    each ``Pending`` asks (in slices of at most ``CHECK_SECONDS``, with ``ctx.check_cancelled``
    between them). Raises whatever ``call`` or ``ctx.check_cancelled`` raises."""
    while True:
        answer = call()
        if not isinstance(answer, Pending):
            return answer
        sleep_checking(answer.seconds, ctx, sleep=sleep)


def sleep_checking(
    seconds: float, ctx: RunContext, *, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Sleep ``seconds``, checking for cancellation (``ctx.check_cancelled`` raises) at least
    every ``CHECK_SECONDS`` and once more at the end."""

    def cancelled() -> bool:
        ctx.check_cancelled()
        return False

    sleep_in_slices(seconds, stop=cancelled, sleep=sleep)
    ctx.check_cancelled()


def sleep_in_slices(
    seconds: float, *, stop: Callable[[], bool], sleep: Callable[[float], None] = time.sleep
) -> None:
    """Sleep ``seconds`` in slices of at most ``CHECK_SECONDS``, ending early once ``stop()``
    is true (asked before each slice)."""
    left = max(0.0, seconds)
    while left > 0 and not stop():
        step = min(left, CHECK_SECONDS)
        sleep(step)
        left -= step
