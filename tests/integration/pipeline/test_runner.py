import threading
from pathlib import Path

import orjson
import pytest

from tests.integration.pipeline.fakes import (
    FAKE_CONFIG,
    Calls,
    export_lines,
    export_row,
    make_runner,
)
from vmt.errors import BackendError, InputError, RunConflictError, VmtError
from vmt.pipeline import artifacts
from vmt.pipeline.lease import LeaseHolder
from vmt.pipeline.protocols import RunStatus, Stage
from vmt.pipeline.store import RunState, RunStore, StageState


class Crash(BaseException):
    """Stands for the process dying mid-stage (nothing in the runner may catch it)."""


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore(tmp_path / "state" / "runs.sqlite")
    yield s
    s.close()


def _messages(store: RunStore, run_id: str, stage: Stage | None = None) -> list[str]:
    return [e.message for e in store.events(run_id) if stage is None or e.stage is stage]


def _in_thread(fn: object) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []

    def target() -> None:
        try:
            out.append(fn())  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, out


def test_complete_run_reports_every_transition(store: RunStore) -> None:
    calls = Calls()
    runner = make_runner(store, calls)
    run_id = runner.create_run(FAKE_CONFIG)
    record = runner.advance(run_id)

    assert record.state is RunState.COMPLETE, record.error
    assert all(s.state is StageState.DONE for s in store.stages(run_id))
    assert calls.log == ["export", "prepare", "train", "predict", "publish"]
    assert [s for s, _, _ in calls.statuses] == [
        RunStatus.EXPORTING_DATA,
        RunStatus.PREPARING_DATA,
        *[RunStatus.TRAINING_MODEL] * 4,
        RunStatus.COMPLETE,
    ]
    final = calls.statuses[-1][1]
    assert final["AP50"] == pytest.approx(1.0)  # predictions are the ground truth
    assert "mAP" in final and final["report"]
    assert final["rows"] == 10 and final["rejected"] == 0
    assert final["handles"] == {"fake.job": "job-1", "model": "model-of-job-1"}
    assert record.metrics["test"]["AP50"] == pytest.approx(1.0)
    paths = calls.published[0]
    lines = paths["predictions"].read_bytes().splitlines()  # type: ignore[union-attr]
    assert len(lines) == 4  # one box on each of 2 validation + 2 test rows
    assert all(orjson.loads(line)["confidence"] == pytest.approx(0.9) for line in lines)
    assert orjson.loads(paths["metrics"].read_bytes())["map_50"] == pytest.approx(1.0)  # type: ignore[union-attr]


def test_samples_are_persisted_between_stages(store: RunStore) -> None:
    calls = Calls()
    runner = make_runner(store, calls)
    run_id = runner.create_run(FAKE_CONFIG)
    runner.advance(run_id)
    samples = artifacts.SampleFile(store.run_dir(run_id) / artifacts.SAMPLES_FILE)
    assert [s.data_row_id for s in samples] == [f"row-{i}" for i in range(10)]
    assert sum(1 for _ in samples) == 10  # iterable again
    assert store.stage(run_id, Stage.PREPARE).outputs["by_split"] == {
        "training": 6,
        "validation": 2,
        "test": 2,
    }


def test_resume_after_a_crash_redoes_no_finished_stage_and_no_job(store: RunStore) -> None:
    calls = Calls(train_failures=[Crash()])
    run_id = make_runner(store, calls).create_run(FAKE_CONFIG)
    with pytest.raises(Crash):
        make_runner(store, calls).advance(run_id)
    assert store.stage(run_id, Stage.TRAIN).state is StageState.RUNNING
    assert store.get_handle(run_id, "fake.job") == "job-1"  # recorded before the crash

    record = make_runner(store, calls).advance(run_id)  # a fresh runner: a new process

    assert record.state is RunState.COMPLETE
    assert calls.log == ["export", "prepare", "train", "train", "predict", "publish"]
    assert calls.jobs_created == 1  # re-attached to job-1, no second job
    assert "stage already done; not redone" in _messages(store, run_id, Stage.EXPORT)
    assert "stage already done; not redone" in _messages(store, run_id, Stage.PREPARE)
    assert store.stage(run_id, Stage.EXPORT).attempts == 1
    assert store.stage(run_id, Stage.TRAIN).attempts == 2


def test_resume_of_a_complete_run_does_nothing(store: RunStore) -> None:
    calls = Calls()
    runner = make_runner(store, calls)
    run_id = runner.create_run(FAKE_CONFIG)
    runner.advance(run_id)
    assert runner.advance(run_id).state is RunState.COMPLETE
    assert calls.log.count("train") == 1


def test_handle_is_durable_while_the_stage_still_runs(store: RunStore) -> None:
    calls = Calls()
    runner = make_runner(store, calls, wait_for_release=True)
    run_id = runner.create_run(FAKE_CONFIG)
    thread, out = _in_thread(lambda: runner.advance(run_id))
    try:
        assert calls.training_started.wait(10)
        other = RunStore(store.db_path)
        assert other.get_handle(run_id, "fake.job") == "job-1"
        assert other.stage(run_id, Stage.TRAIN).state is StageState.RUNNING
        other.close()
    finally:
        calls.release_training.set()
        thread.join(10)
    assert out[0].state is RunState.COMPLETE  # type: ignore[union-attr]


def test_retryable_errors_are_retried_with_backoff(store: RunStore) -> None:
    calls = Calls(train_failures=[BackendError("HTTP 503", retryable=True)] * 2)
    runner = make_runner(store, calls)
    run_id = runner.create_run(FAKE_CONFIG)
    record = runner.advance(run_id)
    assert record.state is RunState.COMPLETE
    assert calls.log.count("train") == 3
    assert calls.jobs_created == 1
    errors = store.errors(run_id)
    expected = [(Stage.TRAIN, True, "HTTP 503")] * 2
    assert [(e.stage, e.retryable, e.message) for e in errors] == expected
    assert _messages(store, run_id, Stage.TRAIN).count("stage train: transient error") == 2


def test_non_retryable_error_fails_at_once_with_a_short_message(store: RunStore) -> None:
    calls = Calls(train_failures=[BackendError("quota exceeded " + "x" * 400, retryable=False)])
    runner = make_runner(store, calls)
    run_id = runner.create_run(FAKE_CONFIG)
    record = runner.advance(run_id)

    assert record.state is RunState.FAILED
    assert calls.log.count("train") == 1
    assert record.error is not None and len(record.error) <= 255
    assert record.error.startswith("Training failed: quota exceeded")
    assert record.error.endswith(f"vmt resume {run_id}")
    status, metadata, error = calls.statuses[-1]
    assert status is RunStatus.FAILED and error == record.error
    assert metadata["stage"] == "train"
    assert store.stage(run_id, Stage.TRAIN).state is StageState.FAILED
    (recorded,) = store.errors(run_id)
    assert not recorded.retryable

    # once the cause is gone, resume finishes without redoing export or prepare
    assert make_runner(store, calls).advance(run_id).state is RunState.COMPLETE
    assert calls.log.count("export") == 1 and calls.log.count("prepare") == 1


def test_retries_give_up_after_the_budget(store: RunStore) -> None:
    calls = Calls(train_failures=[BackendError("HTTP 503", retryable=True)] * 10)
    runner = make_runner(store, calls)
    run_id = runner.create_run(FAKE_CONFIG)
    record = runner.advance(run_id)
    assert record.state is RunState.FAILED
    assert calls.log.count("train") == 4  # max_attempts of the test backoff
    assert "service kept failing" in (record.error or "")


def test_internal_error_fails_the_run_and_says_so(store: RunStore) -> None:
    calls = Calls(train_failures=[ZeroDivisionError("division by zero")])
    runner = make_runner(store, calls)
    run_id = runner.create_run(FAKE_CONFIG)
    record = runner.advance(run_id)
    assert record.state is RunState.FAILED
    assert "internal error (ZeroDivisionError: division by zero)" in (record.error or "")


def test_second_advance_gets_a_clear_conflict(store: RunStore) -> None:
    calls = Calls()
    first = make_runner(store, calls, wait_for_release=True)
    run_id = first.create_run(FAKE_CONFIG)
    thread, out = _in_thread(lambda: first.advance(run_id))
    try:
        assert calls.training_started.wait(10)
        second = make_runner(store, calls)
        with pytest.raises(
            RunConflictError,
            match=rf"run {run_id} is already being advanced by "
            r"process \d+ on .*vmt cancel",
        ):
            second.advance(run_id)
    finally:
        calls.release_training.set()
        thread.join(10)
    assert out[0].state is RunState.COMPLETE  # type: ignore[union-attr]
    assert calls.log.count("train") == 1


def test_lease_of_a_dead_process_does_not_block_resume(store: RunStore) -> None:
    calls = Calls()
    runner = make_runner(store, calls)
    run_id = runner.create_run(FAKE_CONFIG)
    dead = LeaseHolder(LeaseHolder.for_this_process().host, 2**22 + 12345, "dead")
    assert store.try_acquire_lease(run_id, dead, ttl=3600) is None
    assert runner.advance(run_id).state is RunState.COMPLETE


def test_cancel_stops_the_advancing_process_and_the_job(store: RunStore) -> None:
    calls = Calls()
    runner = make_runner(store, calls, wait_for_release=True)
    run_id = runner.create_run(FAKE_CONFIG)
    thread, out = _in_thread(lambda: runner.advance(run_id))
    assert calls.training_started.wait(10)
    requested = make_runner(store, calls).cancel(run_id)
    assert requested.cancel_requested and requested.state is RunState.RUNNING
    thread.join(10)
    assert not thread.is_alive()
    record = out[0]
    assert record.state is RunState.CANCELLED  # type: ignore[union-attr]
    assert calls.cancelled == [run_id]
    status, _, error = calls.statuses[-1]
    assert status is RunStatus.FAILED and "cancelled" in (error or "")
    assert "run cancelled" in _messages(store, run_id)
    with pytest.raises(InputError, match="was cancelled"):
        runner.advance(run_id)


def test_cancel_of_an_idle_run_cancels_at_once(store: RunStore) -> None:
    calls = Calls()
    runner = make_runner(store, calls)
    run_id = runner.create_run(FAKE_CONFIG)
    assert runner.cancel(run_id).state is RunState.CANCELLED
    assert calls.cancelled == [run_id]
    with pytest.raises(InputError, match="already cancelled"):
        runner.cancel(run_id)


def test_bad_rows_are_reported_and_the_run_completes(store: RunStore) -> None:
    lines = export_lines()
    lines.insert(1, b'{"data_row": ')  # line 2: broken JSON
    lines.append(orjson.dumps(export_row(50, "training", image="/images/missing.png")))  # line 12
    calls = Calls()
    runner = make_runner(store, calls, lines=lines)
    run_id = runner.create_run(FAKE_CONFIG)
    record = runner.advance(run_id)

    assert record.state is RunState.COMPLETE
    rejected = list(artifacts.read_rejections(store.run_dir(run_id) / artifacts.REJECTIONS_FILE))
    assert [(r.reason, r.line, r.data_row_id) for r in rejected] == [
        ("malformed_json", 2, None),
        ("image_missing", 12, "row-50"),
    ]
    outputs = store.stage(run_id, Stage.PREPARE).outputs
    assert outputs["rejected"] == 2 and outputs["samples"] == 10
    assert outputs["rejections_by_reason"] == {"malformed_json": 1, "image_missing": 1}


def test_a_run_whose_every_row_is_bad_fails_and_says_why(store: RunStore) -> None:
    lines = [
        orjson.dumps(export_row(i, "training", image=f"/images/missing-{i}.png")) for i in range(3)
    ] + [b"not json"]
    calls = Calls()
    runner = make_runner(store, calls, lines=lines)
    run_id = runner.create_run(FAKE_CONFIG)
    record = runner.advance(run_id)

    assert record.state is RunState.FAILED
    assert record.error is not None and len(record.error) <= 255
    assert "every row was rejected" in record.error
    assert "3 image_missing" in record.error and "1 malformed_json" in record.error
    assert calls.statuses[-1][0] is RunStatus.FAILED
    rejected = list(artifacts.read_rejections(store.run_dir(run_id) / artifacts.REJECTIONS_FILE))
    assert len(rejected) == 4
    assert "train" not in calls.log


def test_unknown_backend_kind_is_refused_at_creation(store: RunStore) -> None:
    from vmt.backends.factory import build_backends
    from vmt.config import Settings
    from vmt.pipeline.run_config import BackendSpec, RunConfig
    from vmt.pipeline.runner import Runner

    runner = Runner(
        Settings(state_dir=store.db_path.parent), backends_factory=build_backends, store=store
    )
    config = RunConfig(
        source=BackendSpec(kind="ftp"),
        trainer=BackendSpec(kind="local"),
        sink=BackendSpec(kind="folder"),
    )
    with pytest.raises(VmtError, match="unknown source 'ftp'"):
        runner.create_run(config)


def test_relative_image_paths_are_taken_from_the_images_folder(store: RunStore) -> None:
    lines = [
        orjson.dumps(export_row(0, "training", image="sub/a.png")),
        orjson.dumps(export_row(1, "test", image="https://host/b.png")),
    ]
    runner = make_runner(store, Calls(), lines=lines, image_base=Path("/pictures"))
    run_id = runner.create_run(FAKE_CONFIG)
    assert runner.advance(run_id).state is RunState.COMPLETE
    samples = artifacts.SampleFile(store.run_dir(run_id) / artifacts.SAMPLES_FILE)
    assert [s.image_uri for s in samples] == ["/pictures/sub/a.png", "https://host/b.png"]


def test_dry_run_ends_planned_not_failed_and_resume_launches_it(store: RunStore) -> None:
    from vmt.pipeline.protocols import DRY_RUN_OPTION, TrainingPlanned

    calls = Calls()
    calls.train_failures.append(TrainingPlanned("dry run: stopped before launching (3.47 USD)"))
    runner = make_runner(store, calls)
    run_id = runner.create_run(FAKE_CONFIG)

    planned = runner.advance(run_id)
    assert planned.state is RunState.PLANNED
    assert planned.error is None and store.errors(run_id) == []
    assert store.stage(run_id, Stage.TRAIN).state is StageState.PENDING
    assert RunStatus.FAILED not in [s for s, _, _ in calls.statuses]
    (event,) = [e for e in store.events(run_id) if e.message == "run planned"]
    assert "3.47 USD" in event.data["plan"] and event.data["launch"] == f"vmt resume {run_id}"

    launched = runner.resume(run_id)
    assert launched.state is RunState.COMPLETE, launched.error
    assert launched.config.trainer.options[DRY_RUN_OPTION] is False
    assert calls.log.count("train") == 2 and calls.log.count("prepare") == 1
    assert "planned run launched" in _messages(store, run_id)


def test_errors_carry_the_stage_that_raised_them(store: RunStore) -> None:
    calls = Calls()
    failure = VmtError("the training job failed")
    calls.train_failures.append(failure)
    runner = make_runner(store, calls)
    run_id = runner.create_run(FAKE_CONFIG)
    assert runner.advance(run_id).state is RunState.FAILED
    assert failure.stage == "train"
    assert [e.stage for e in store.errors(run_id)] == [Stage.TRAIN]
