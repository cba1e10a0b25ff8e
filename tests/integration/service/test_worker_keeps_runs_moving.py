"""One worker thread, many runs whose trainers answer ``Pending``: none waits on another.

The real ``RunWorker`` and ``PipelineRunService`` over the real ``Runner``, with the shipped
``ScriptedTrainer`` (jobs that need N looks) behind the fake source and sink."""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration.pipeline.fakes import FAKE_CONFIG, Calls, make_runner
from vmt.backends.scripted import ScriptedTrainer, TrainerScript
from vmt.pipeline.protocols import Stage
from vmt.pipeline.store import RunState, RunStore, StageState
from vmt.service.pipeline_runs import PipelineRunService
from vmt.service.worker import RunWorker


def _wait(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_one_worker_launches_every_training_before_any_finishes(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    script = TrainerScript(train_polls=30, poll_seconds=0.05)
    runner = make_runner(store, Calls(), trainer=ScriptedTrainer(script=script))
    runs = [runner.create_run(FAKE_CONFIG) for _ in range(6)]
    worker = RunWorker(PipelineRunService(runner.settings, runner=runner), threads=1)
    worker.start(resume=runs)
    try:
        _wait(lambda: len(script.launched) >= 6)
        trained = [store.stage(r, Stage.TRAIN).state for r in runs]
        assert StageState.DONE not in trained, "a training finished before all were launched"
        _wait(lambda: all(store.get_run(r).state is RunState.COMPLETE for r in runs))
    finally:
        worker.stop()
    assert sorted(j.split("-", 2)[0] for j in script.launched).count("training") == 6
    for run_id in runs:
        messages = [e.message for e in store.events(run_id)]
        assert messages.count("waiting on the trainer's job") >= 1
        # one "stage started" per stage: polls do not restart the stage or report it again
        assert messages.count("stage started") == 6


def test_a_cancel_while_waiting_cancels_the_job(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    script = TrainerScript(train_polls=10_000, poll_seconds=0.05)
    runner = make_runner(store, Calls(), trainer=ScriptedTrainer(script=script))
    run_id = runner.create_run(FAKE_CONFIG)
    worker = RunWorker(PipelineRunService(runner.settings, runner=runner), threads=1)
    worker.start(resume=[run_id])
    try:
        _wait(lambda: len(script.launched) == 1)
        # at once when the run is between two looks, else at the advancing call's next check
        assert runner.cancel(run_id).state in (RunState.CANCELLED, RunState.RUNNING)
        _wait(lambda: store.get_run(run_id).state is RunState.CANCELLED, timeout=5)
        _wait(lambda: not worker.busy(), timeout=5)
    finally:
        worker.stop()
    assert store.get_run(run_id).state is RunState.CANCELLED
    assert any(e.message == "scripted job cancelled" for e in store.events(run_id))
