"""A finished local run (a tiny synthetic dataset, one epoch) shared by the pool tests, and a
pool of rows it never saw."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from vmt.backends.factory import build_backends
from vmt.config import load_settings
from vmt.pipeline.run_config import files_run_config
from vmt.pipeline.runner import Runner
from vmt.pipeline.store import RunState, RunStore
from vmt.synthetic import generate_dataset


@dataclass(frozen=True)
class FinishedRun:
    state_dir: Path
    run_id: str
    pool: Path
    """An export of 12 rows the run never saw."""

    def store(self) -> RunStore:
        return RunStore(self.state_dir / "runs.sqlite")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    root = tmp_path_factory.mktemp("pool-run")
    export = generate_dataset(root / "train", images=24, seed=3)
    pool = generate_dataset(root / "pool", images=12, seed=77)
    settings = load_settings(
        state_dir=root / "state", local_epochs=6, train_seconds=60, local_device="cpu", seed=0
    )
    runner = Runner(settings, backends_factory=build_backends, heartbeat_seconds=0.2)
    run_id = runner.create_run(
        files_run_config(export=str(export), out_dir=str(root / "out"), trainer="local")
    )
    record = runner.advance(run_id)
    runner.store.close()
    assert record.state is RunState.COMPLETE, record.error
    return FinishedRun(root / "state", run_id, pool)
