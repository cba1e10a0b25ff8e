"""A process training on Vertex is killed with SIGKILL; the run resumed in another process
re-attaches to the same training pipeline instead of creating a second one."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import cli_env, sigkill_when
from tests.fakes.gcp import LocalGcp, local_gcp
from tests.fakes.simple_run_context import SimpleRunContext
from tests.fakes.trainer_calls import train_to_end
from tests.fakes.vertex_samples import make_samples
from vmt.backends.vertex import VertexTrainer
from vmt.config import load_settings
from vmt.domain import Sample
from vmt.formats.outbound_policy import OutboundRules

ROOT = Path(__file__).resolve().parents[2]

_TRAIN = """
import pickle, sys
from pathlib import Path
from tests.fakes.simple_run_context import SimpleRunContext
from tests.fakes.trainer_calls import train_to_end
from vmt.backends.vertex import VertexTrainer
from vmt.config import load_settings
samples = pickle.loads(Path(sys.argv[1]).read_bytes())
ctx = SimpleRunContext("run-kill", Path(sys.argv[2]))
train_to_end(VertexTrainer(load_settings()), ctx, samples)
"""


@pytest.fixture
def gcp(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalGcp]:
    with local_gcp(training_polls=10**9) as world:
        for key, value in world.settings_env().items():
            monkeypatch.setenv(key, value)
        yield world


@pytest.mark.slow  # heavy; CI runs it (make test-slow); covered lighter by the default suite
def test_sigkill_while_training_then_resume_creates_nothing_twice(
    gcp: LocalGcp, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    ctx = SimpleRunContext("run-kill", workdir)
    trainer = VertexTrainer(load_settings(), outbound=OutboundRules.export_file())
    staged = [
        s for s in trainer.prepare(ctx, make_samples(tmp_path / "img")) if isinstance(s, Sample)
    ]
    samples_file = tmp_path / "samples.pickle"
    samples_file.write_bytes(pickle.dumps(staged))

    env = cli_env(PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    proc = subprocess.Popen(
        [sys.executable, "-c", _TRAIN, str(samples_file), str(workdir)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    # Killed once it polls the training pipeline (a few GETs after the create).
    sigkill_when(
        proc,
        lambda: any(
            r.method == "GET" and "/trainingPipelines/" in r.path for r in gcp.vertex.requests
        ),
        what="polling the training pipeline",
        timeout_s=60,
    )
    assert gcp.vertex.creates("trainingPipelines") == 1

    gcp.vertex.training_polls = 0  # it finishes on the next poll
    model = train_to_end(
        VertexTrainer(load_settings()), SimpleRunContext("run-kill", workdir), staged
    ).model
    assert model.startswith("projects/test-project/locations/us-central1/models/")
    assert gcp.vertex.creates("datasets") == 1
    assert gcp.vertex.creates("trainingPipelines") == 1
    imports = [r for r in gcp.vertex.requests if r.path.endswith(":import")]
    assert len(imports) == 1
