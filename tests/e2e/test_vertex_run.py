"""``vmt run --export FILE --trainer vertex`` end to end, in subprocesses, against the fake Vertex
REST server and the GCS emulator, with the images served by a local HTTP server."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import VMT, cli_env, sigkill_when
from tests.fakes.gcp import LocalGcp, local_gcp
from vmt.config import load_settings
from vmt.pipeline.store import RunStore
from vmt.synthetic import generate_dataset


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[LocalGcp, Path, dict[str, str]]]:
    """(local cloud, export file whose row_data are http URLs, environment for vmt)."""
    data = tmp_path / "data"
    export = generate_dataset(data, images=60, seed=3)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(data)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/images/"
    rows = []
    for line in export.read_bytes().splitlines():
        row = orjson.loads(line)
        row["data_row"]["row_data"] = base + Path(row["data_row"]["row_data"]).name
        rows.append(orjson.dumps(row))
    remote_export = tmp_path / "export-http.ndjson"
    remote_export.write_bytes(b"\n".join(rows) + b"\n")
    with local_gcp() as gcp:
        env = cli_env(**gcp.settings_env(), VMT_STATE_DIR=str(tmp_path / "state"))
        try:
            yield gcp, remote_export, env
        finally:
            server.shutdown()
            server.server_close()


def _vmt(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VMT, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_vmt_run_with_vertex_completes_with_metrics_and_report(
    world: tuple[LocalGcp, Path, dict[str, str]], tmp_path: Path
) -> None:
    gcp, export, env = world
    out = tmp_path / "out"
    done = _vmt(env, "run", "--export", str(export), "--out", str(out), "--trainer", "vertex")
    assert done.returncode == 0, done.stderr[-3000:]

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["vertex_evaluation"]["boundingBoxMeanAveragePrecision"] == 0.71
    assert metrics["counts"]["images"] == 12  # validation + test rows
    uploads = [json.loads(x) for x in (out / "predictions.ndjson").read_text().splitlines()]
    assert 10 <= len({row["dataRow"]["id"] for row in uploads}) <= 12
    assert all(0 < row["confidence"] < 1 for row in uploads)
    assert (out / "report.html").is_file()
    assert gcp.vertex.creates("datasets") == 1
    assert gcp.vertex.creates("trainingPipelines") == 1
    assert gcp.vertex.creates("batchPredictionJobs") == 1
    images = [n for n in gcp.names() if "/images/" in n]
    assert len(images) == 60
    imports = [n for n in gcp.names() if n.endswith("vertex_import.jsonl")]
    assert len(imports) == 1
    assert len(gcp.read_text(imports[0]).splitlines()) == 60
    instances = [n for n in gcp.names() if n.endswith("batch/instances.jsonl")]
    assert len(gcp.read_text(instances[0]).splitlines()) == 12


def _kill_while_training(gcp: LocalGcp, export: Path, env: dict[str, str], out: Path) -> str:
    """Start ``vmt run --trainer vertex``, SIGKILL it once it polls the training pipeline;
    return the run id."""
    gcp.vertex.training_polls = 10**9  # trains until we say so
    proc = subprocess.Popen(
        [*VMT, "run", "--export", str(export), "--out", str(out), "--trainer", "vertex"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    sigkill_when(
        proc,
        lambda: any(
            r.method == "GET" and "/trainingPipelines/" in r.path for r in gcp.vertex.requests
        ),
        what="training",
    )
    [run] = _store(env).list_runs()
    return run.id


def _store(env: dict[str, str]) -> RunStore:
    return RunStore.for_settings(load_settings(state_dir=Path(env["VMT_STATE_DIR"])))


def test_sigkill_while_training_then_resume_creates_nothing_twice(
    world: tuple[LocalGcp, Path, dict[str, str]], tmp_path: Path
) -> None:
    gcp, export, env = world
    out = tmp_path / "out"
    run_id = _kill_while_training(gcp, export, env, out)
    assert gcp.vertex.creates("trainingPipelines") == 1

    gcp.vertex.training_polls = 0  # finishes at the next poll
    resumed = _vmt(env, "resume", run_id)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert gcp.vertex.creates("datasets") == 1
    assert gcp.vertex.creates("trainingPipelines") == 1
    assert len([r for r in gcp.vertex.requests if r.path.endswith(":import")]) == 1
    assert (out / "metrics.json").is_file()
    assert _store(env).handles(run_id)["vertex.training_pipeline"].startswith("projects/")


def test_vmt_cancel_cancels_the_vertex_training(
    world: tuple[LocalGcp, Path, dict[str, str]], tmp_path: Path
) -> None:
    gcp, export, env = world
    run_id = _kill_while_training(gcp, export, env, tmp_path / "out")
    cancelled = _vmt(env, "cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr[-3000:]
    [pipeline] = gcp.vertex.pipelines
    assert any(
        r.method == "POST" and r.path.endswith(f"{pipeline}:cancel") for r in gcp.vertex.requests
    )
    assert gcp.vertex.pipelines[pipeline]["state"] == "PIPELINE_STATE_CANCELLING"


def test_dry_run_prints_the_cost_ends_planned_and_resume_launches_it(
    world: tuple[LocalGcp, Path, dict[str, str]], tmp_path: Path
) -> None:
    gcp, export, env = world
    done = _vmt(
        env, "run", "--export", str(export), "--out", str(tmp_path / "out"), "--trainer",
        "vertex", "--dry-run",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]  # a plan, not a failure
    shown = " ".join(done.stdout.split())
    assert "planned: dry run: stopped before launching training" in shown
    assert "maximum cost about 69.30 USD" in shown
    assert gcp.vertex.creates("datasets") == 1
    assert gcp.vertex.creates("trainingPipelines") == 0
    [run] = _store(env).list_runs()
    assert run.state.value == "planned" and run.error is None
    assert f"vmt resume {run.id}" in done.stdout

    launched = _vmt(env, "resume", run.id)
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert gcp.vertex.creates("datasets") == 1  # the dry run's dataset is used
    assert gcp.vertex.creates("trainingPipelines") == 1
    [run] = _store(env).list_runs()
    assert run.state.value == "complete"


def test_failed_vertex_training_fails_the_run_with_its_message(
    world: tuple[LocalGcp, Path, dict[str, str]], tmp_path: Path
) -> None:
    gcp, export, env = world
    gcp.vertex.fail_training = "Internal error: the dataset has corrupted images"
    out = tmp_path / "out"
    done = _vmt(env, "run", "--export", str(export), "--out", str(out), "--trainer", "vertex")
    assert done.returncode == 1
    assert "the dataset has corrupted images" in " ".join(done.stderr.split())
    [run] = _store(env).list_runs()
    assert run.state.value == "failed"
    assert run.error is not None and "the dataset has corrupted images" in run.error
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "FAILED"
