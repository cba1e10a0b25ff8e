import random

import pytest

from vmt.retry import Backoff, retry_call


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _policy(clock: Clock, **kw: float) -> Backoff:
    return Backoff(sleep=clock.sleep, clock=lambda: clock.now, rng=random.Random(1), **kw)  # type: ignore[arg-type]


def test_retries_transient_then_succeeds() -> None:
    clock = Clock()
    calls = iter([TimeoutError(), TimeoutError(), "ok"])

    def fn() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    assert retry_call(fn, is_retryable=lambda e: True, backoff=_policy(clock)) == "ok"
    assert len(clock.sleeps) == 2
    assert clock.sleeps[0] <= 0.5 and clock.sleeps[1] <= 1.0


def test_non_retryable_raises_at_once() -> None:
    clock = Clock()

    def fn() -> None:
        raise PermissionError("bad key")

    with pytest.raises(PermissionError):
        retry_call(fn, is_retryable=lambda e: False, backoff=_policy(clock))
    assert clock.sleeps == []


def test_gives_up_at_deadline_with_last_error() -> None:
    clock = Clock()

    def fn() -> None:
        raise ConnectionError(f"at {clock.now}")

    with pytest.raises(ConnectionError):
        retry_call(fn, is_retryable=lambda e: True, backoff=_policy(clock, deadline=10.0, cap=4.0))
    assert clock.now <= 10.0
    assert len(clock.sleeps) >= 3
