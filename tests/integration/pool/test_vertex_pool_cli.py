"""``vmt select``, ``vmt prelabel`` and ``vmt predict`` on a finished Vertex run, as processes
with the settings in their environment: ``vmt select`` is killed (SIGKILL) while the pool's
batch prediction job runs; run again, it re-attaches to that job; the other commands then read
the kept predictions without asking Vertex anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from tests.conftest import VMT, cli_env, sigkill_when
from tests.integration.pool.conftest import JOBS, VertexWorld, pool_samples
from vmt.pool.select import read_ranking_csv


def _env(vertex_run: VertexWorld) -> dict[str, str]:
    return cli_env(
        **vertex_run.gcp.settings_env(), VMT_STATE_DIR=str(vertex_run.root / "state"), COLUMNS="200"
    )


def _vmt(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VMT, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _kill_while_predicting(vertex_run: VertexWorld, env: dict[str, str], *args: str) -> str:
    """Run ``vmt *args``, SIGKILL it once it polls a batch job that is not the run's; return
    that job's name."""
    vertex = vertex_run.gcp.vertex
    run_job = vertex_run.store.handles(vertex_run.run_id)["vertex.batch_prediction_job"]
    vertex.batch_polls = 10**9  # the pool's job runs until we say so
    proc = subprocess.Popen(
        [*VMT, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )

    def polled() -> list[str]:
        return [
            r.path
            for r in vertex.requests
            if r.method == "GET" and f"/{JOBS}/" in r.path and not r.path.endswith(run_job)
        ]

    sigkill_when(proc, lambda: bool(polled()), what="a poll of the pool's job")
    return polled()[0].split("/v1/", 1)[-1]


@pytest.mark.slow  # heavy; CI runs it (make test-slow); covered lighter by the default suite
def test_select_killed_mid_job_resumes_on_it_then_prelabel_and_predict_reuse(
    vertex_run: VertexWorld, tmp_path: Path
) -> None:
    env = _env(vertex_run)
    vertex = vertex_run.gcp.vertex
    pool = vertex_run.pool("pool", images=12, seed=77)
    ranking = tmp_path / "ranking.csv"
    select = ("select", "--run", vertex_run.run_id, "--pool", str(pool), "-n", "5")

    job = _kill_while_predicting(vertex_run, env, *select, "-o", str(ranking))
    assert vertex.creates(JOBS) == 2  # the run's, and the pool's
    assert vertex.jobs[job]["state"] != "JOB_STATE_SUCCEEDED"
    assert not ranking.exists()

    vertex.batch_polls = 0  # it finishes at the next poll
    done = _vmt(env, *select, "-o", str(ranking))
    assert done.returncode == 0, done.stderr[-3000:]
    assert vertex.creates(JOBS) == 2  # re-attached, not submitted again
    assert vertex.jobs[job]["state"] == "JOB_STATE_SUCCEEDED"
    rows = read_ranking_csv(ranking)
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4, 5]
    pool_ids = {s.data_row_id for s in pool_samples(pool)}
    assert {r["data_row_id"] for r in rows} <= pool_ids
    assert "5 of 12 pool rows ranked by least_confidence" in " ".join(done.stdout.split())

    before = len(vertex.requests)
    prelabels = tmp_path / "prelabels.ndjson"
    labelled = _vmt(
        env, "prelabel", "--run", vertex_run.run_id, "--pool", str(pool), "-o", str(prelabels)
    )
    assert labelled.returncode == 0, labelled.stderr[-3000:]
    assert "(pool predictions reused)" in " ".join(labelled.stdout.split())
    lines = [orjson.loads(x) for x in prelabels.read_bytes().splitlines()]
    assert lines and {line["dataRow"]["id"] for line in lines} <= pool_ids
    assert all("confidence" not in line for line in lines)

    predicted = _vmt(
        env, "predict", "--run", vertex_run.run_id, "--export", str(pool),
        "-o", str(tmp_path / "p.ndjson"),
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert "12 rows predicted" in predicted.stdout
    assert "reused" in predicted.stdout
    assert len(vertex.requests) == before  # neither command asked Vertex anything
