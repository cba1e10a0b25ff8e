"""The pipeline executed by ``kfp.local`` (SubprocessRunner, this environment): the same stage
functions as ``vmt run``, so the same seed and epochs give the same predictions and metrics.

The whole pipeline takes about a minute and a half here (six step processes, each importing
torch), so it is marked ``slow``; the default suite runs the export and prepare components.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kfp import local

from tests.conftest import VMT, cli_env
from vmt.config import load_settings
from vmt.orchestrators.kfp_pipeline import build_pipeline, components
from vmt.orchestrators.run_folder import FolderRunContext
from vmt.orchestrators.steps import step_settings_json
from vmt.pipeline.protocols import Stage
from vmt.pipeline.run_config import files_run_config
from vmt.synthetic import generate_dataset

IMAGE = "python:3.11-slim"  # not pulled: the subprocess runner uses this interpreter
EPOCHS = "8"
SEED = 0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("dataset"), images=30, seed=5)


@pytest.fixture
def kfp_local(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "kfp-root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    yield root


def _params(dataset: Path, tmp_path: Path) -> dict[str, str]:
    config = files_run_config(
        export=str(dataset),
        out_dir=str(tmp_path / "pipeline-out"),
        trainer="local",
        trainer_options={"seed": SEED},
    )
    settings = load_settings(local_epochs=int(EPOCHS), local_device="cpu", train_seconds=300)
    return {
        "run_id": "kfp-local-run",
        "run_config": config.to_json(),
        "settings": step_settings_json(settings),
        "run_dir": str(tmp_path / "run"),
    }


def test_export_and_prepare_components_run_locally(
    dataset: Path, tmp_path: Path, kfp_local: Path
) -> None:
    built = components(IMAGE)
    params = _params(dataset, tmp_path)
    exported = built["export"](**params)
    prepared = built["prepare"](**params)

    ctx = FolderRunContext(params["run_id"], Path(params["run_dir"]))
    assert orjson.loads(exported.output) == ctx.stage_outputs(Stage.EXPORT)
    outputs = orjson.loads(prepared.output)
    assert outputs == ctx.stage_outputs(Stage.PREPARE)
    assert outputs["rows"] == 30
    assert outputs["samples"] + outputs["rejected"] == 30
    assert sum(outputs["by_split"].values()) == outputs["samples"] > 20
    lines = (Path(params["run_dir"]) / "samples.jsonl").read_bytes().splitlines()
    assert len(lines) == outputs["samples"]
    assert [e["message"] for e in ctx.events() if e["stage"] == "prepare"][-1] == "stage done"


@pytest.mark.slow
def test_whole_pipeline_matches_vmt_run(dataset: Path, tmp_path: Path, kfp_local: Path) -> None:
    params = _params(dataset, tmp_path)
    task = build_pipeline(IMAGE, exit_handler=False)(**params)
    assert task is not None
    run_dir = Path(params["run_dir"])
    ctx = FolderRunContext(params["run_id"], run_dir)
    assert all(ctx.stage_outputs(stage) is not None for stage in Stage)

    out = tmp_path / "cli-out"
    env = cli_env(
        VMT_STATE_DIR=str(tmp_path / "state"), VMT_LOCAL_EPOCHS=EPOCHS, VMT_LOCAL_DEVICE="cpu"
    )
    done = subprocess.run(
        [*VMT, "run", "--export", str(dataset), "--out", str(out), "--trainer", "local",
         "--seed", str(SEED), "--train-seconds", "300"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]

    def metrics(path: Path) -> dict[str, Any]:
        loaded: dict[str, Any] = orjson.loads(path.read_bytes())
        return loaded

    pipeline_metrics = metrics(run_dir / "metrics.json")
    cli_metrics = metrics(out / "metrics.json")
    assert pipeline_metrics["counts"]["predictions"] > 0
    assert pipeline_metrics == cli_metrics
    (cli_run,) = (tmp_path / "state" / "runs").iterdir()
    assert sorted_lines((run_dir / "predictions.jsonl").read_bytes()) == sorted_lines(
        (cli_run / "predictions.jsonl").read_bytes()
    )
    published = metrics(tmp_path / "pipeline-out" / "metrics.json")
    assert published == cli_metrics


def sorted_lines(data: bytes) -> bytes:
    return b"\n".join(sorted(line for line in data.splitlines() if line.strip()))
