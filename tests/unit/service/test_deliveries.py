import itertools
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from vmt.errors import BackendError
from vmt.service.deliveries import DeliveryStore


def ids() -> "itertools.count[int]":
    return itertools.count(1)


def test_first_delivery_starts_later_ones_get_the_same_run(tmp_path: Path) -> None:
    store = DeliveryStore(tmp_path / "d.db")
    counter = ids()
    started: list[str] = []
    kwargs = {"model_run_id": "mr-1", "model_type": "t", "model_id": None}
    first = store.create_or_get(
        **kwargs, new_run_id=lambda: f"r{next(counter)}", start=started.append
    )
    second = store.create_or_get(
        **kwargs, new_run_id=lambda: f"r{next(counter)}", start=started.append
    )
    assert first == ("r1", True)
    assert second == ("r1", False)
    assert started == ["r1"]
    assert store.delivery_count("mr-1") == 2
    assert store.run_ids() == {"r1"}


def test_model_run_id_is_unique_in_the_schema(tmp_path: Path) -> None:
    store = DeliveryStore(tmp_path / "d.db")
    with sqlite3.connect(store.path) as db:
        db.execute(
            "INSERT INTO model_run_deliveries (model_run_id, run_id, model_type, claim,"
            " claimed_at) VALUES ('mr', 'r1', 't', 'c', 0)"
        )
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(
                "INSERT INTO model_run_deliveries (model_run_id, run_id, model_type,"
                " claim, claimed_at) VALUES ('mr', 'r2', 't', 'c', 0)"
            )


def test_a_failed_start_releases_the_claim(tmp_path: Path) -> None:
    store = DeliveryStore(tmp_path / "d.db")

    def boom(run_id: str) -> None:
        raise BackendError("run store is down")

    with pytest.raises(BackendError):
        store.create_or_get(
            model_run_id="mr-1", model_type="t", model_id=None, new_run_id=lambda: "r1", start=boom
        )
    assert store.delivery_count("mr-1") == 0
    started: list[str] = []
    assert store.create_or_get(
        model_run_id="mr-1",
        model_type="t",
        model_id=None,
        new_run_id=lambda: "r2",
        start=started.append,
    ) == ("r2", True)
    assert started == ["r2"]


def test_a_stale_claim_is_taken_over_with_the_same_run_id(tmp_path: Path) -> None:
    """A creator that died after claiming: the next delivery re-runs start for the same id."""
    store = DeliveryStore(tmp_path / "d.db", stale_claim_seconds=0.0)
    with sqlite3.connect(store.path) as db:
        db.execute(
            "INSERT INTO model_run_deliveries (model_run_id, run_id, model_type, claim,"
            " claimed_at) VALUES ('mr-1', 'r-dead', 't', 'dead', 0)"
        )
    started: list[str] = []
    got = store.create_or_get(
        model_run_id="mr-1",
        model_type="t",
        model_id=None,
        new_run_id=lambda: "r-new",
        start=started.append,
    )
    assert got == ("r-dead", True)
    assert started == ["r-dead"]


def test_a_live_claim_makes_others_wait_then_give_up_clearly(tmp_path: Path) -> None:
    store = DeliveryStore(tmp_path / "d.db", wait_seconds=0.1)
    with sqlite3.connect(store.path) as db:
        db.execute(
            "INSERT INTO model_run_deliveries (model_run_id, run_id, model_type, claim,"
            " claimed_at) VALUES ('mr-1', 'r1', 't', 'busy', ?)",
            (time.time(),),
        )
    with pytest.raises(BackendError, match="still being created"):
        store.create_or_get(
            model_run_id="mr-1",
            model_type="t",
            model_id=None,
            new_run_id=lambda: "r2",
            start=lambda run_id: None,
        )


def test_two_stores_on_one_file_start_once_under_contention(tmp_path: Path) -> None:
    """As two processes would: separate store objects, separate connections, one file."""
    stores = [DeliveryStore(tmp_path / "d.db") for _ in range(2)]
    started: list[str] = []
    lock = threading.Lock()
    counter = ids()
    barrier = threading.Barrier(40)
    results: list[tuple[str, bool]] = []

    def start(run_id: str) -> None:
        with lock:
            started.append(run_id)

    def deliver(index: int) -> None:
        barrier.wait()
        with lock:
            run_id = f"r{next(counter)}"
        got = stores[index % 2].create_or_get(
            model_run_id="mr-x",
            model_type="t",
            model_id=None,
            new_run_id=lambda: run_id,
            start=start,
        )
        with lock:
            results.append(got)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(started) == 1
    assert len(results) == 40
    assert {run_id for run_id, _ in results} == set(started)
    assert sum(created for _, created in results) == 1


def test_ping_reports_an_unreadable_store(tmp_path: Path) -> None:
    store = DeliveryStore(tmp_path / "d.db")
    store.ping()
    store.path.unlink()
    store.path.mkdir()  # a directory where the database should be
    with pytest.raises(BackendError, match="unreachable"):
        store.ping()


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _claim(store: DeliveryStore, owner: str, *, run_id: str = "r-dead") -> None:
    with sqlite3.connect(store.path) as db:
        db.execute(
            "INSERT INTO model_run_deliveries (model_run_id, run_id, model_type, claim,"
            " claimed_at, owner) VALUES ('mr-1', ?, 't', 'dead', ?, ?)",
            (run_id, time.time(), owner),
        )


def _owner(pid: int, life: str = "some-life") -> str:
    import socket

    return f"{socket.gethostname()}:{pid}:{life}"


@pytest.mark.parametrize("owner", ["dead_pid", "this_pid_earlier_life"])
def test_a_claim_of_a_dead_process_is_taken_over_at_once(tmp_path: Path, owner: str) -> None:
    """Not after stale_claim_seconds (a minute by default): the owner is known to be gone."""
    import os

    store = DeliveryStore(tmp_path / "d.db", wait_seconds=0.2)
    _claim(store, _owner(_dead_pid() if owner == "dead_pid" else os.getpid()))
    started: list[str] = []
    got = store.create_or_get(
        model_run_id="mr-1",
        model_type="t",
        model_id=None,
        new_run_id=lambda: "x",
        start=started.append,
    )
    assert got == ("r-dead", True) and started == ["r-dead"]


def test_a_claim_of_a_live_process_is_waited_for(tmp_path: Path) -> None:
    import os

    store = DeliveryStore(tmp_path / "d.db", wait_seconds=0.2)
    _claim(store, _owner(os.getppid()))
    with pytest.raises(BackendError, match="still being created"):
        store.create_or_get(
            model_run_id="mr-1",
            model_type="t",
            model_id=None,
            new_run_id=lambda: "x",
            start=lambda run_id: None,
        )


@pytest.mark.parametrize("exists", [True, False])
def test_recover_settles_what_a_dead_process_left(tmp_path: Path, exists: bool) -> None:
    import os

    store = DeliveryStore(tmp_path / "d.db")
    _claim(store, _owner(_dead_pid()))
    with sqlite3.connect(store.path) as db:
        db.execute(
            "INSERT INTO model_run_deliveries (model_run_id, run_id, model_type, claim,"
            " claimed_at, owner) VALUES ('mr-live', 'r-live', 't', 'c', ?, ?)",
            (time.time(), _owner(os.getppid())),
        )
    recovered = store.recover(lambda run_id: exists)
    assert recovered == (["r-dead"] if exists else [])
    assert store.run_ids() == ({"r-dead"} if exists else set())
    assert store.delivery_count("mr-1") == (1 if exists else 0)
    assert store.delivery_count("mr-live") == 1  # a live owner's claim is left alone
