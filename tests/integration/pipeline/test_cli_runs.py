"""``vmt runs``, ``vmt runs show`` and ``vmt cancel`` over a store filled by the fake runner."""

import os
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.conftest import VMT, cli_env
from tests.integration.pipeline.fakes import FAKE_CONFIG, Calls, export_row, make_runner
from vmt.pipeline.store import RunStore


@pytest.fixture
def store() -> RunStore:
    s = RunStore(Path(os.environ["VMT_STATE_DIR"]) / "runs.sqlite")
    yield s
    s.close()


def _vmt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VMT, *args], capture_output=True, text=True, env=cli_env(COLUMNS="250"), timeout=60
    )


def test_runs_lists_and_show_explains_a_failed_run(store: RunStore) -> None:
    good = make_runner(store, Calls())
    good_id = good.create_run(FAKE_CONFIG)
    good.advance(good_id)
    bad_lines = [
        orjson.dumps(export_row(i, "training", image=f"/x/missing-{i}.png")) for i in range(2)
    ]
    bad = make_runner(store, Calls(), lines=[b"{oops", *bad_lines])
    bad_id = bad.create_run(FAKE_CONFIG)
    bad.advance(bad_id)

    listing = _vmt("runs")
    assert listing.returncode == 0, listing.stderr
    assert good_id in listing.stdout and bad_id in listing.stdout
    assert "complete" in listing.stdout and "failed" in listing.stdout

    shown = _vmt("runs", "show", bad_id)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "every row was rejected" in out
    assert "Rejected rows: 3" in out
    assert "malformed_json" in out and "image_missing: 2" in out
    assert "row-1" in out  # the data row of a rejected line
    for stage in ("export", "prepare", "train"):
        assert stage in out
    assert "Events" in out and "stage started" in out

    complete = _vmt("runs", "show", good_id)
    assert "fake.job" in complete.stdout and "job-1" in complete.stdout
    assert "AP50" in complete.stdout


def test_show_and_cancel_refuse_unknown_or_finished_runs(store: RunStore) -> None:
    missing = _vmt("runs", "show", "nope")
    assert missing.returncode == 1
    assert "no run 'nope'" in missing.stderr and "Traceback" not in missing.stderr

    runner = make_runner(store, Calls())
    run_id = runner.create_run(FAKE_CONFIG)
    runner.advance(run_id)
    refused = _vmt("cancel", run_id)
    assert refused.returncode == 1
    assert f"run {run_id} is already complete" in refused.stderr


def test_runs_on_an_empty_store() -> None:
    out = _vmt("runs")
    assert out.returncode == 0
    assert "no runs" in out.stdout
