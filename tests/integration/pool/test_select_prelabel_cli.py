"""``vmt select`` and ``vmt prelabel`` on a finished local run: the pool is predicted once and
reused; rankings are ordered and explained; pre-labels are the model's boxes at the run's
F1-optimal confidence, without confidence."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.integration.pool.conftest import FinishedRun
from vmt.cli import app
from vmt.pipeline import artifacts
from vmt.pool.pool_inputs import run_threshold
from vmt.pool.pool_predictions import POOLS_DIR
from vmt.pool.select import read_ranking_csv


@pytest.fixture
def run(finished_run: FinishedRun, monkeypatch: pytest.MonkeyPatch) -> FinishedRun:
    monkeypatch.setenv("VMT_STATE_DIR", str(finished_run.state_dir))
    monkeypatch.setenv("VMT_LOCAL_DEVICE", "cpu")
    monkeypatch.setenv("COLUMNS", "250")
    return finished_run


def _vmt(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _pool_folders(run: FinishedRun) -> list[Path]:
    root = run.store().run_dir(run.run_id) / POOLS_DIR
    return sorted(p for p in root.iterdir() if p.name != "training") if root.exists() else []


def test_select_ranks_the_pool_and_reuses_its_predictions(run: FinishedRun, tmp_path: Path) -> None:
    out = tmp_path / "ranking.csv"
    _vmt("select", "--run", run.run_id, "--pool", str(run.pool), "-n", "5", "-o", str(out))
    rows = read_ranking_csv(out)
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4, 5]
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    pool_ids = {orjson.loads(line)["data_row"]["id"] for line in run.pool.read_bytes().splitlines()}
    assert {r["data_row_id"] for r in rows} <= pool_ids
    assert all(r["global_key"] and r["reason"] for r in rows)
    (folder,) = _pool_folders(run)
    predictions = folder / artifacts.PREDICTIONS_FILE
    stamp = predictions.stat().st_mtime_ns

    # a second strategy on the same pool: no second prediction; diverse uses embeddings
    out2 = tmp_path / "diverse.csv"
    printed = _vmt(
        "select", "--run", run.run_id, "--pool", str(run.pool), "-s", "diverse", "-n", "4",
        "-o", str(out2),
    )  # fmt: skip
    assert "no image embeddings" not in printed
    assert predictions.stat().st_mtime_ns == stamp and _pool_folders(run) == [folder]
    diverse = read_ranking_csv(out2)
    assert len(diverse) == 4 and len({r["data_row_id"] for r in diverse}) == 4
    # the run's training images count as chosen: every pick has a finite distance
    assert all("from the nearest chosen or labelled image" in r["reason"] for r in diverse)
    assert (folder / "embeddings.npy").is_file()

    # the same strategy twice gives the same file
    out3 = tmp_path / "again.csv"
    _vmt("select", "--run", run.run_id, "--pool", str(run.pool), "-n", "5", "-o", str(out3))
    assert out3.read_bytes() == out.read_bytes()


def test_prelabel_writes_the_models_boxes_at_the_runs_confidence(
    run: FinishedRun, tmp_path: Path
) -> None:
    out = tmp_path / "prelabels.ndjson"
    printed = _vmt("prelabel", "--run", run.run_id, "--pool", str(run.pool), "-o", str(out))
    threshold, source = run_threshold(run.store().run_dir(run.run_id))
    assert f"confidence {threshold:.2f} ({source})" in printed
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    (folder,) = _pool_folders(run)
    expected = [
        (p.data_row_id, d.box.label, round(d.box.x0, 6))
        for p in artifacts.read_predictions(folder / artifacts.PREDICTIONS_FILE)
        for d in p.detections
        if d.score >= threshold
    ]
    assert [(r["dataRow"]["id"], r["name"], round(r["bbox"]["left"], 6)) for r in rows] == expected
    assert all("confidence" not in r for r in rows)
    assert len({r["uuid"] for r in rows}) == len(rows)

    # a fixed confidence of 0 keeps every box; the uuids of the boxes kept before stay the same
    everything = tmp_path / "all.ndjson"
    _vmt("prelabel", "--run", run.run_id, "--pool", str(run.pool), "-o", str(everything),
         "--confidence", "0")  # fmt: skip
    all_rows = [orjson.loads(line) for line in everything.read_bytes().splitlines()]
    assert all_rows, "the trained model should predict some boxes on the pool"
    assert len(all_rows) >= len(rows)
    assert {r["uuid"] for r in rows} <= {r["uuid"] for r in all_rows}


def test_prelabel_of_a_run_without_model_says_so(run: FinishedRun, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["prelabel", "--run", "no-such-run", "--pool", str(run.pool), "-o", "x.ndjson"]
    )
    assert result.exit_code != 0
