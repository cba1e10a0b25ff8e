import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vmt.pipeline.lease import LeaseHolder
from vmt.pipeline.protocols import Stage
from vmt.pipeline.run_config import files_run_config
from vmt.pipeline.store import RunState, RunStore, StageState, UnknownRunError


def _config() -> object:
    return files_run_config(export="/data/export.ndjson", out_dir="/out")


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore(tmp_path / "state" / "runs.sqlite")
    yield s
    s.close()


def test_create_and_get_run(store: RunStore) -> None:
    run_id = store.create_run(_config())  # type: ignore[arg-type]
    run = store.get_run(run_id)
    assert run.state is RunState.PENDING
    assert run.config.source.options["export_path"] == "/data/export.ndjson"
    assert run.config.label == "export.ndjson"
    assert [s.state for s in store.stages(run_id)] == [StageState.PENDING] * len(Stage)
    assert store.run_dir(run_id).is_dir()
    assert [e.message for e in store.events(run_id)] == ["run created"]


def test_database_is_wal(store: RunStore) -> None:
    conn = sqlite3.connect(store.db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_unknown_run_is_a_clear_error(store: RunStore) -> None:
    with pytest.raises(UnknownRunError, match=r"no run 'nope'.*vmt runs"):
        store.get_run("nope")


def test_stage_lifecycle_records_timings_and_outputs(store: RunStore) -> None:
    run_id = store.create_run(_config())  # type: ignore[arg-type]
    store.start_stage(run_id, Stage.EXPORT)
    assert store.get_run(run_id).state is RunState.RUNNING
    assert store.get_run(run_id).stage is Stage.EXPORT
    store.finish_stage(run_id, Stage.EXPORT, {"export_bytes": 12})
    record = store.stage(run_id, Stage.EXPORT)
    assert record.state is StageState.DONE
    assert record.attempts == 1
    assert record.outputs == {"export_bytes": 12}
    assert record.seconds is not None and record.seconds >= 0
    store.start_stage(run_id, Stage.PREPARE)
    store.fail_stage(run_id, Stage.PREPARE, "boom")
    store.start_stage(run_id, Stage.PREPARE)
    assert store.stage(run_id, Stage.PREPARE).attempts == 2
    assert store.stage(run_id, Stage.PREPARE).error is None


def test_handles_are_visible_to_another_connection_at_once(store: RunStore) -> None:
    run_id = store.create_run(_config())  # type: ignore[arg-type]
    store.set_handle(run_id, "vertex.training_pipeline", "projects/p/trainingPipelines/1")
    other = RunStore(store.db_path)
    try:
        assert other.get_handle(run_id, "vertex.training_pipeline") == (
            "projects/p/trainingPipelines/1"
        )
        store.set_handle(run_id, "vertex.training_pipeline", "projects/p/trainingPipelines/2")
        assert other.handles(run_id) == {
            "vertex.training_pipeline": "projects/p/trainingPipelines/2"
        }
    finally:
        other.close()


def test_handle_survives_a_killed_process(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    store = RunStore(db)
    run_id = store.create_run(_config())  # type: ignore[arg-type]
    store.close()
    code = (
        "import os, sys; from pathlib import Path; from vmt.pipeline.store import RunStore\n"
        f"s = RunStore(Path({str(db)!r})); s.set_handle({run_id!r}, 'job', 'j-1')\n"
        "os._exit(137)\n"  # no clean shutdown
    )
    subprocess.run([sys.executable, "-c", code], check=False, env=_env())
    reopened = RunStore(db)
    try:
        assert reopened.get_handle(run_id, "job") == "j-1"
    finally:
        reopened.close()


def _env() -> dict[str, str]:
    from tests.conftest import cli_env

    return cli_env()


def test_list_runs_newest_first(store: RunStore) -> None:
    first = store.create_run(_config())  # type: ignore[arg-type]
    time.sleep(0.01)
    second = store.create_run(_config())  # type: ignore[arg-type]
    assert [r.id for r in store.list_runs()] == [second, first]
    assert [r.id for r in store.list_runs(limit=1)] == [second]


def test_lease_excludes_a_second_holder_until_released(store: RunStore) -> None:
    run_id = store.create_run(_config())  # type: ignore[arg-type]
    a, b = LeaseHolder.for_this_process(), LeaseHolder.for_this_process()
    assert store.try_acquire_lease(run_id, a, ttl=30) is None
    held = store.try_acquire_lease(run_id, b, ttl=30)
    assert held is not None and held.holder == a
    assert store.get_run(run_id).is_active()
    assert store.renew_lease(run_id, a, ttl=30)
    assert not store.renew_lease(run_id, b, ttl=30)
    store.release_lease(run_id, a)
    assert not store.get_run(run_id).is_active()
    assert store.try_acquire_lease(run_id, b, ttl=30) is None


def test_expired_lease_is_taken_over(store: RunStore) -> None:
    run_id = store.create_run(_config())  # type: ignore[arg-type]
    a, b = LeaseHolder.for_this_process(), LeaseHolder.for_this_process()
    assert store.try_acquire_lease(run_id, a, ttl=0.0) is None
    assert store.try_acquire_lease(run_id, b, ttl=30) is None
    assert not store.renew_lease(run_id, a, ttl=30)


def test_lease_of_a_dead_process_is_taken_over_at_once(store: RunStore) -> None:
    run_id = store.create_run(_config())  # type: ignore[arg-type]
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = LeaseHolder(LeaseHolder.for_this_process().host, int(child.stdout), "gone")
    assert store.try_acquire_lease(run_id, dead, ttl=3600) is None
    assert store.try_acquire_lease(run_id, LeaseHolder.for_this_process(), ttl=30) is None


def test_lease_of_a_live_process_elsewhere_is_respected(store: RunStore) -> None:
    run_id = store.create_run(_config())  # type: ignore[arg-type]
    remote = LeaseHolder("another-host", 1, "x")
    assert store.try_acquire_lease(run_id, remote, ttl=3600) is None
    held = store.try_acquire_lease(run_id, LeaseHolder.for_this_process(), ttl=30)
    assert held is not None and "another-host" in held.describe()


def test_cancel_flag(store: RunStore) -> None:
    run_id = store.create_run(_config())  # type: ignore[arg-type]
    assert not store.cancel_requested(run_id)
    store.request_cancel(run_id)
    assert store.cancel_requested(run_id)
    assert store.get_run(run_id).cancel_requested


def test_events_and_errors_are_ordered(store: RunStore) -> None:
    run_id = store.create_run(_config())  # type: ignore[arg-type]
    store.add_event(run_id, "stage started", stage=Stage.TRAIN, data={"attempt": 1})
    store.add_error(run_id, stage=Stage.TRAIN, kind="BackendError", message="503", retryable=True)
    events = store.events(run_id)
    assert [e.message for e in events] == ["run created", "stage started"]
    assert events[1].stage is Stage.TRAIN and events[1].data == {"attempt": 1}
    (error,) = store.errors(run_id)
    assert (error.stage, error.kind, error.retryable) == (Stage.TRAIN, "BackendError", True)


def test_metrics_summary(store: RunStore) -> None:
    run_id = store.create_run(_config())  # type: ignore[arg-type]
    store.set_metrics(run_id, {"test": {"AP50": 0.93}})
    assert store.get_run(run_id).metrics == {"test": {"AP50": 0.93}}


def test_the_latest_events_and_errors_are_read_from_the_end(store: RunStore) -> None:
    run_id = store.create_run(_config())  # type: ignore[arg-type]
    for i in range(30):
        store.add_event(run_id, f"event {i}")
        store.add_error(run_id, stage=None, kind="k", message=f"error {i}", retryable=False)
    latest = store.events(run_id, last=3)
    assert [e.message for e in latest] == ["event 27", "event 28", "event 29"]
    assert store.count_events(run_id) == 31  # with "run created"
    assert len(store.events(run_id)) == 31
    assert [e.message for e in store.errors(run_id, last=2)] == ["error 28", "error 29"]
    assert store.events(run_id, last=0) == []
