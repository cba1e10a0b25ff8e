import threading
import time
from collections.abc import Callable

import pytest

from tests.fakes.run_service import FakeRuns
from vmt.service.worker import RunWorker


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def started(runs: FakeRuns, *names: str) -> None:
    for name in names:
        runs.start_run(name, model_run_id=f"mr-{name}", model_type="t", model_id=None)


def test_resumes_given_runs_and_advances_until_done() -> None:
    runs = FakeRuns(steps=3)
    started(runs, "a", "b")
    worker = RunWorker(runs, threads=2)
    worker.start(resume=runs.unfinished_runs())
    try:
        wait_until(lambda: all(r["state"] == "complete" for r in runs.runs.values()))
        wait_until(lambda: not worker.busy())
    finally:
        worker.stop()
    assert sorted(runs.advance_calls) == ["a"] * 3 + ["b"] * 3


def test_a_raising_run_does_not_stop_the_worker_and_is_retried_then_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = FakeRuns()
    started(runs, "bad", "good")

    def hook(run_id: str) -> None:
        if run_id == "bad":
            raise RuntimeError("disk on fire")

    runs.advance_hook = hook
    worker = RunWorker(runs, threads=1, error_retry_seconds=0.0, max_errors=3)
    worker.start(resume=["bad", "good"])
    try:
        wait_until(lambda: runs.runs["good"]["state"] == "complete")
        wait_until(lambda: runs.advance_calls.count("bad") == 3 and not worker.busy())
        time.sleep(0.05)
        assert runs.advance_calls.count("bad") == 3  # given up after max_errors
        started(runs, "later")
        worker.submit("later")
        wait_until(lambda: runs.runs["later"]["state"] == "complete")  # still alive
    finally:
        worker.stop()
    assert "disk on fire" in caplog.text


def test_a_run_is_never_advanced_by_two_threads_at_once() -> None:
    runs = FakeRuns(steps=5)
    started(runs, "only")
    active = 0
    most = 0
    lock = threading.Lock()

    def hook(run_id: str) -> None:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        time.sleep(0.01)
        with lock:
            active -= 1

    runs.advance_hook = hook
    worker = RunWorker(runs, threads=4)
    worker.start()
    try:
        for _ in range(20):
            worker.submit("only")
        wait_until(lambda: runs.runs["only"]["state"] == "complete" and not worker.busy())
    finally:
        worker.stop()
    assert most == 1


def test_delay_is_honoured() -> None:
    runs = FakeRuns()
    started(runs, "later")
    worker = RunWorker(runs)
    worker.start()
    try:
        worker.submit("later", delay=0.2)
        time.sleep(0.1)
        assert runs.advance_calls == []
        wait_until(lambda: runs.advance_calls == ["later"])
    finally:
        worker.stop()
