"""Finished runs for the pool tests: a local run (a tiny synthetic dataset, one epoch) shared by
the module, with a pool of rows it never saw; and a Vertex run on the local cloud (per test)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.gcp import LocalGcp, local_gcp
from tests.fakes.labelbox_server import FakeLabelbox
from vmt.backends.factory import build_backends
from vmt.backends.vertex import VertexTrainer
from vmt.config import load_settings
from vmt.domain import Sample
from vmt.formats.export_options import ExportOptions
from vmt.formats.labelbox_export import read_samples
from vmt.formats.outbound_policy import OutboundRules
from vmt.pipeline.run_config import files_run_config
from vmt.pipeline.run_records import RunRecord
from vmt.pipeline.runner import Runner
from vmt.pipeline.store import RunState, RunStore
from vmt.pool.pool_predictions import PoolPredictions, predict_pool
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


JOBS = "batchPredictionJobs"


@dataclass
class VertexWorld:
    gcp: LocalGcp
    store: RunStore
    run_id: str
    root: Path

    def trainer(self, **kwargs: Any) -> VertexTrainer:
        return VertexTrainer(load_settings(), **{"outbound": OutboundRules.export_file(), **kwargs})

    def predict(self, pool: Path, **options: Any) -> PoolPredictions:
        """``predict_pool`` with a new trainer (as a new process would build)."""
        return predict_pool(self.store, self.run_id, pool=pool, trainer=self.trainer(), **options)

    def pool(self, name: str, *, images: int, seed: int) -> Path:
        """A generated export of rows the run never saw (with splits and boxes), whose boxes
        the fake's model "sees" in their staged images."""
        export = generate_dataset(self.root / name, images=images, seed=seed)
        for sample in pool_samples(export):
            assert sample.width and sample.height
            self.gcp.vertex.unseen_truth[f"{sample.data_row_id}.png"] = [
                {
                    "displayName": box.label,
                    "xMin": box.x0 / sample.width,
                    "yMin": box.y0 / sample.height,
                    "xMax": box.x1 / sample.width,
                    "yMax": box.y1 / sample.height,
                }
                for box in sample.boxes
            ]
        return export


@contextmanager
def local_cloud(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalGcp]:
    """The fake Vertex server and the GCS emulator, with the environment (settings, state
    directory ``root/state``) pointing ``vmt`` at them."""
    with local_gcp() as gcp:
        for key, value in gcp.settings_env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("VMT_STATE_DIR", str(root / "state"))
        yield gcp


def run_on_vertex(runner: Runner, export: Path, out: Path) -> RunRecord:
    """``vmt run --export EXPORT --out OUT --trainer vertex``, in process."""
    run_id = runner.create_run(
        files_run_config(export=str(export), out_dir=str(out), trainer="vertex")
    )
    return runner.advance(run_id)


@pytest.fixture
def vertex_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VertexWorld]:
    """A Vertex run finished through the pipeline (60 generated images, local files), on the
    local cloud."""
    with local_cloud(tmp_path, monkeypatch) as gcp:
        export = generate_dataset(tmp_path / "train", images=60, seed=3)
        runner = Runner(load_settings(), backends_factory=build_backends, heartbeat_seconds=0.2)
        try:
            record = run_on_vertex(runner, export, tmp_path / "out")
            assert record.state is RunState.COMPLETE, record.error
            assert gcp.vertex.creates(JOBS) == 1  # the run's own (validation + test)
            yield VertexWorld(gcp, runner.store, record.id, tmp_path)
        finally:
            runner.store.close()


def pool_samples(export: Path) -> list[Sample]:
    options = ExportOptions(require_dimensions=False, require_boxes=False, keep_unassigned=True)
    return [s for s in read_samples(export, options) if isinstance(s, Sample)]
