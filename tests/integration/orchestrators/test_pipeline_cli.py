"""``vmt pipeline compile|submit``, ``vmt run --orchestrator vertex-pipelines``, ``vmt runs``,
``vmt runs show`` and ``vmt cancel`` on pipeline runs: the ``vmt`` command line (in this process,
``typer.testing.CliRunner``), the real aiplatform SDK, the fake Vertex server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.fakes.gcp import LocalGcp, local_gcp
from vmt.cli import app
from vmt.errors import VmtError

IMAGE = "us-central1-docker.pkg.dev/test-project/vmt/vmt:0.1.0"
MODEL_RUN = "clq3x9k2b0001"
JOB = f"vmt-{MODEL_RUN}"


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def gcp(tmp_path: Path) -> Iterator[tuple[LocalGcp, dict[str, str]]]:
    with local_gcp() as world:
        env = {
            **world.settings_env(),
            "VMT_STATE_DIR": str(tmp_path / "state"),
            "VMT_PIPELINE_IMAGE": IMAGE,
        }
        yield world, env


def _vmt(env: dict[str, str], *args: str) -> Done:
    """``vmt ARGS`` as ``vmt.cli.main`` runs it: a ``VmtError`` is one line and exit code 1."""
    result = CliRunner().invoke(app, list(args), env={**env, "COLUMNS": "200"})
    if isinstance(result.exception, VmtError):
        return Done(1, result.stdout, result.exception.message)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Done(result.exit_code, result.stdout, result.stderr)


def cli_env() -> dict[str, str]:
    return {}


def test_compile_writes_loadable_yaml(tmp_path: Path) -> None:
    out = tmp_path / "pipeline.yaml"
    done = _vmt(cli_env(), "pipeline", "compile", "-o", str(out), "--image", IMAGE)
    assert done.returncode == 0, done.stderr
    spec = yaml.safe_load(out.read_text())
    assert spec["pipelineInfo"]["name"] == "vmt-run"
    assert {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()} == {
        IMAGE
    }
    missing = _vmt(cli_env(), "pipeline", "compile", "-o", str(out))
    assert missing.returncode == 1 and "VMT_PIPELINE_IMAGE" in missing.stderr


def test_run_runs_show_and_cancel_on_vertex_pipelines(
    gcp: tuple[LocalGcp, dict[str, str]],
) -> None:
    world, env = gcp
    first = _vmt(env, "run", "--model-run", MODEL_RUN, "--trainer", "vertex",
                 "--orchestrator", "vertex-pipelines")  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert f"submitted pipeline job {JOB}" in first.stdout
    again = _vmt(env, "pipeline", "submit", "--model-run", MODEL_RUN)
    assert again.returncode == 0, again.stderr
    assert f"already submitted; attached to pipeline job {JOB}" in again.stdout
    assert len(world.vertex.pipeline_jobs.jobs) == 1
    assert not (Path(env["VMT_STATE_DIR"]) / "runs.sqlite").exists()  # nothing kept here

    env = {**env, "VMT_ORCHESTRATOR": "vertex-pipelines"}
    world.vertex.pipeline_jobs.advance(JOB, done=2, running="train")
    listed = _vmt(env, "runs")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if JOB in line)
    assert "running" in row and "train" in row and MODEL_RUN in row

    shown = _vmt(env, "runs", "show", JOB)
    assert shown.returncode == 0, shown.stderr
    for expected in ("export", "prepare", "SUCCEEDED", "RUNNING", "/pipelines/", JOB):
        assert expected in shown.stdout, expected

    cancelled = _vmt(env, "cancel", JOB)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"run {JOB}: cancelled" in cancelled.stdout
    assert world.vertex.pipeline_jobs.job(JOB)["state"] == "PIPELINE_STATE_CANCELLED"
    twice = _vmt(env, "cancel", JOB)
    assert twice.returncode == 1 and "already cancelled" in twice.stderr

    unknown = _vmt(env, "runs", "show", "vmt-nope")
    assert unknown.returncode == 1 and "no pipeline job vmt-nope" in unknown.stderr


def test_vertex_pipelines_needs_a_model_run(
    gcp: tuple[LocalGcp, dict[str, str]], tmp_path: Path
) -> None:
    _, env = gcp
    export = tmp_path / "export.ndjson"
    export.write_text("")
    done = _vmt(env, "run", "--export", str(export), "--out", str(tmp_path / "out"),
                "--orchestrator", "vertex-pipelines")  # fmt: skip
    assert done.returncode == 1 and "--model-run" in done.stderr
