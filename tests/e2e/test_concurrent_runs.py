"""One worker thread keeps several cloud runs moving: no thread waits on a training job.

Six Vertex runs and one local run delivered at once to ``vmt serve`` with one worker: every
Vertex run reaches training (its pipeline created) before the first training finishes, the
local training does not hold them back, and all seven complete. The figures at scale (training
held 60 s) are ``bench/serve_concurrency.py``'s, in docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.concurrent_runs import run_concurrently


@pytest.mark.slow
def test_six_vertex_runs_and_a_local_one_share_one_worker(tmp_path: Path) -> None:
    outcome = run_concurrently(
        tmp_path,
        vertex_runs=6,
        local_runs=1,
        hold_seconds=20.0,
        images=60,
        local_train_seconds=8.0,
        poll_seconds=0.5,
        timeout=300,
    )
    assert set(outcome.states.values()) == {"complete"}, outcome.states
    assert len(outcome.pipelines_created) == 6
    assert outcome.all_reached_training_before_the_first_finished(), outcome
    # the local run trained while the Vertex runs were being launched, not before them
    assert outcome.local_training is not None
    local_started, local_finished = outcome.local_training
    assert local_started < max(outcome.pipelines_created) < local_finished, outcome
