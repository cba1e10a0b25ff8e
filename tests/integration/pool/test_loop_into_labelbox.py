"""``vmt prelabel --project`` and ``vmt select --project --prelabel`` with a finished local run,
through the real labelbox SDK and the fake Labelbox."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.fakes.labelbox_server import FakeLabelbox
from tests.integration.pool.conftest import FinishedRun, use_fake_labelbox
from vmt.cli import app
from vmt.pool.pool_inputs import labelled_in_project
from vmt.pool.select import read_ranking_csv

PROJECT = "proj-loop"
NEXT_ROUND = "proj-next-round"


@pytest.fixture
def run(
    finished_run: FinishedRun, fake_labelbox: FakeLabelbox, monkeypatch: pytest.MonkeyPatch
) -> FinishedRun:
    use_fake_labelbox(monkeypatch, finished_run, fake_labelbox, VMT_PREDICTION_CHUNK_SIZE="7")
    pool_ids = [
        orjson.loads(x)["data_row"]["id"] for x in finished_run.pool.read_bytes().splitlines()
    ]
    # the project knows circles and squares only: triangles and stars are reported, not sent
    fake_labelbox.projects.add_project(PROJECT, classes=["circle", "square"], data_rows=pool_ids)
    return finished_run


def _vmt(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_prelabel_into_a_project_twice_imports_once(
    run: FinishedRun, fake_labelbox: FakeLabelbox
) -> None:
    args = ("prelabel", "--run", run.run_id, "--pool", str(run.pool), "--project", PROJECT,
            "--confidence", "0")  # fmt: skip
    printed = _vmt(*args)
    imports = fake_labelbox.projects.imports_for(PROJECT)
    assert imports and all(i.name.startswith(f"vmt-{run.run_id}-mal-") for i in imports)
    rows = fake_labelbox.projects.prelabels(PROJECT)
    assert rows and {r["name"] for r in rows} <= {"circle", "square"}
    assert all("confidence" not in r for r in rows)
    assert "imports (" in printed and "0 rows rejected by Labelbox" in printed
    if "left out" in printed:  # the model predicted a class the project lacks
        assert "classes missing from the project's ontology were left out" in printed

    creates = fake_labelbox.operations().count("createMALPredictionImportByFilePyApi")
    again = _vmt(*args)
    assert fake_labelbox.operations().count("createMALPredictionImportByFilePyApi") == creates
    assert "0 new" in again


def test_select_sends_the_top_rows_as_a_batch_with_their_prelabels(
    run: FinishedRun, fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    fake_labelbox.projects.add_project(NEXT_ROUND, classes=["circle", "square"])
    out = tmp_path / "ranking.csv"
    _vmt("select", "--run", run.run_id, "--pool", str(run.pool), "-s", "entropy", "-n", "3",
         "-o", str(out), "--project", NEXT_ROUND, "--priority", "1", "--batch", "round-1",
         "--prelabel")  # fmt: skip
    chosen = [r["data_row_id"] for r in read_ranking_csv(out)]
    (batch,) = fake_labelbox.projects.batches(NEXT_ROUND)
    assert batch.name == "round-1" and batch.data_row_ids == chosen and batch.priority == 1
    prelabelled = {r["dataRow"]["id"] for r in fake_labelbox.projects.prelabels(NEXT_ROUND)}
    assert prelabelled <= set(chosen)

    printed = _vmt(
        "select", "--run", run.run_id, "--pool", str(run.pool), "-s", "entropy", "-n", "3",
        "-o", str(out), "--project", NEXT_ROUND, "--batch", "round-1",
    )  # fmt: skip
    assert "already there: round-1" in printed
    assert [b.name for b in fake_labelbox.projects.batches(NEXT_ROUND)] == ["round-1"]


def test_rows_labelbox_refuses_in_a_batch_are_reported(
    run: FinishedRun, fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    """Every pool row is in PROJECT already: Labelbox lists them as failed, and we say so."""
    printed = _vmt(
        "select", "--run", run.run_id, "--pool", str(run.pool), "-s", "random", "-n", "4",
        "-o", str(tmp_path / "r.csv"), "--project", PROJECT, "--batch", "again",
    )  # fmt: skip
    (batch,) = [b for b in fake_labelbox.projects.batches(PROJECT) if b.name == "again"]
    assert batch.data_row_ids == []
    assert "4 rows refused by Labelbox" in " ".join(printed.split())


def test_labelled_rows_of_a_project_export(tmp_path: Path) -> None:
    export = tmp_path / "project.ndjson"
    rows = [
        {"data_row": {"id": "a"}, "projects": {"p1": {"labels": [{"id": "l1"}]}}},
        {"data_row": {"id": "b"}, "projects": {"p1": {"labels": []}}},
        {"data_row": {"id": "c"}, "projects": {"p2": {"labels": [{"id": "l2"}]}}},
    ]
    export.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + b"not json\n")
    assert labelled_in_project(export, "p1") == {"a"}
