"""``vmt relabel``: a run's likely label errors, ranked as the dashboard ranks them, sent to a
Labelbox project as a batch through the real labelbox SDK and the fake Labelbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.builders.run_store import shapes_run
from tests.fakes.labelbox_server import FakeLabelbox
from vmt.cli import app
from vmt.pipeline.store import RunStore
from vmt.pool.select import read_ranking_csv
from vmt.service.dashboard.row_table import SUSPECT_SCORE

PROJECT = "proj-relabel"


def test_likely_label_errors_go_to_a_project_as_one_batch(
    tmp_path: Path, fake_labelbox: FakeLabelbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    store = RunStore(state / "runs.sqlite")
    run_id = shapes_run(store, run_id="run-relabel", images=30)
    store.close()
    for key, value in {
        "VMT_STATE_DIR": str(state),
        "COLUMNS": "250",
        "LABELBOX_API_KEY": fake_labelbox.api_key,
        "VMT_LABELBOX_ENDPOINT": fake_labelbox.endpoint,
        "VMT_LABELBOX_POLL_SECONDS": "0.01",
    }.items():
        monkeypatch.setenv(key, value)
    fake_labelbox.projects.add_project(PROJECT, classes=["circle", "square", "triangle", "star"])
    out = tmp_path / "ranking.csv"
    args = ["relabel", "--run", run_id, "--project", PROJECT, "-n", "3", "-o", str(out),
            "--batch", "relabel-1", "--priority", "2"]  # fmt: skip
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    ranked = read_ranking_csv(out)
    scores = [float(r["score"]) for r in ranked]
    assert len(ranked) == 3 and scores == sorted(scores, reverse=True)
    assert min(scores) >= SUSPECT_SCORE
    (batch,) = [b for b in fake_labelbox.projects.batches(PROJECT) if b.name == "relabel-1"]
    assert batch.data_row_ids == [r["data_row_id"] for r in ranked] and batch.priority == 2
    assert "3 likely label errors" in result.output
    again = CliRunner().invoke(app, args, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert [b.name for b in fake_labelbox.projects.batches(PROJECT)].count("relabel-1") == 1
