"""A finished local run (a tiny synthetic dataset, one epoch) shared by the pool tests, and a
pool of rows it never saw."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.labelbox_server import FakeLabelbox
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


def use_fake_labelbox(
    monkeypatch: pytest.MonkeyPatch, run: FinishedRun, fake: FakeLabelbox, **extra: str
) -> None:
    """The CLI's environment for ``run`` with Labelbox at ``fake`` (plus ``extra`` variables)."""
    for key, value in {
        "VMT_STATE_DIR": str(run.state_dir),
        "VMT_LOCAL_DEVICE": "cpu",
        "COLUMNS": "250",
        "LABELBOX_API_KEY": fake.api_key,
        "VMT_LABELBOX_ENDPOINT": fake.endpoint,
        "VMT_LABELBOX_POLL_SECONDS": "0.01",
        **extra,
    }.items():
        monkeypatch.setenv(key, value)
