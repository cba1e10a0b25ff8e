"""``vmt select`` and ``vmt prelabel`` on Labelbox pools (a project's unlabelled rows, a dataset's
rows not yet in the project, a list of global keys) with a finished local run, through the CLI,
the real labelbox SDK and the fake Labelbox. The pool's images are local files, as the run's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tests.fakes.labelbox_server import FakeLabelbox
from tests.integration.pool.conftest import FinishedRun, use_fake_labelbox
from vmt.cli import app
from vmt.errors import InputError
from vmt.pipeline import artifacts
from vmt.pool.pool_predictions import POOLS_DIR
from vmt.pool.select import read_ranking_csv

DATASET = "ds-pool"
STAGING = "proj-staging"
"""A project the pool rows sit in, 4 of them labelled."""


@pytest.fixture
def run(
    finished_run: FinishedRun, fake_labelbox: FakeLabelbox, monkeypatch: pytest.MonkeyPatch
) -> FinishedRun:
    use_fake_labelbox(monkeypatch, finished_run, fake_labelbox)
    fake_labelbox.catalog.add_dataset(DATASET, [_catalog_row(r) for r in _pool_rows(finished_run)])
    ids = pool_ids(finished_run)
    fake_labelbox.projects.add_project(
        STAGING, classes=["circle", "square"], data_rows=ids, labelled=set(ids[:4])
    )
    return finished_run


def _pool_rows(run: FinishedRun) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in run.pool.read_bytes().splitlines()]


def pool_ids(run: FinishedRun) -> list[str]:
    return sorted(r["data_row"]["id"] for r in _pool_rows(run))


def _catalog_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row["data_row"], **row["media_attributes"]}


def _vmt(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _refused(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert isinstance(result.exception, InputError), result.output
    return result.exception.message


def _pool_folders(run: FinishedRun) -> list[Path]:
    root = run.store().run_dir(run.run_id) / POOLS_DIR
    return sorted(p for p in root.iterdir() if p.name not in ("training", "exports"))


def test_select_from_a_project_pool_makes_a_batch_and_reuses_the_pool_predictions(
    run: FinishedRun, fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    target = "proj-label-1"
    fake_labelbox.projects.add_project(target, classes=["circle", "square"])
    fake_labelbox.export_polls = 2
    out = tmp_path / "ranking.csv"
    printed = _vmt("select", "--run", run.run_id, "--pool", f"labelbox-project:{STAGING}",
                   "--strategy", "least_confidence", "--budget", "3", "--project", target,
                   "--batch", "round-1", "-o", str(out))  # fmt: skip
    unlabelled = set(pool_ids(run)[4:])
    chosen = [r["data_row_id"] for r in read_ranking_csv(out)]
    assert len(chosen) == 3 and set(chosen) <= unlabelled
    assert "3 of 8 pool rows ranked" in printed and "4 labelled rows left out" in printed
    (batch,) = fake_labelbox.projects.batches(target)
    assert (batch.name, batch.data_row_ids) == ("round-1", chosen)
    exported = run.store().run_dir(run.run_id) / "pools" / "exports"
    assert (exported / f"labelbox-project-{STAGING}.ndjson").is_file()
    folders = _pool_folders(run)
    predictions = [f / artifacts.PREDICTIONS_FILE for f in folders]
    stamps = [p.stat().st_mtime_ns for p in predictions]
    predicted = {p.data_row_id for f in predictions for p in artifacts.read_predictions(f)}
    assert unlabelled <= predicted

    # the same pool again, unchanged in Labelbox: exported again, the predictions reused
    exports_before = fake_labelbox.operations().count("exportDataRowsInProjectPyApi")
    _vmt("select", "--run", run.run_id, "--pool", f"labelbox-project:{STAGING}",
         "-s", "margin", "-n", "2", "-o", str(tmp_path / "again.csv"))  # fmt: skip
    assert fake_labelbox.operations().count("exportDataRowsInProjectPyApi") == exports_before + 1
    assert _pool_folders(run) == folders
    assert [p.stat().st_mtime_ns for p in predictions] == stamps


def test_a_projects_own_rows_cannot_go_to_it_as_a_batch(run: FinishedRun, tmp_path: Path) -> None:
    message = _refused("select", "--run", run.run_id, "--pool", f"labelbox-project:{STAGING}",
                       "-n", "2", "-o", str(tmp_path / "r.csv"), "--project", STAGING)  # fmt: skip
    assert "one batch of a project at most" in message


def test_select_from_a_dataset_pool_sends_rows_not_yet_in_the_project_with_prelabels(
    run: FinishedRun, fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    target = "proj-label-2"
    ids = pool_ids(run)
    fake_labelbox.projects.add_project(target, classes=["circle", "square", "triangle", "star"],
                                       data_rows=ids[:3])  # fmt: skip
    out = tmp_path / "ranking.csv"
    printed = _vmt("select", "--run", run.run_id, "--pool", f"labelbox-dataset:{DATASET}",
                   "-s", "entropy", "-n", "2", "-o", str(out), "--project", target,
                   "--batch", "from-dataset", "--prelabel")  # fmt: skip
    assert "2 of 9 pool rows ranked" in printed
    assert "3 rows already in the project left out" in printed
    chosen = [r["data_row_id"] for r in read_ranking_csv(out)]
    assert set(chosen) <= set(ids[3:])
    batch = next(b for b in fake_labelbox.projects.batches(target) if b.name == "from-dataset")
    assert batch.data_row_ids == chosen
    prelabelled = {r["dataRow"]["id"] for r in fake_labelbox.projects.prelabels(target)}
    assert prelabelled and prelabelled <= set(chosen)

    # pre-labelling the project from that dataset pool: its rows are exactly those not in it
    message = _refused("prelabel", "--run", run.run_id, "--pool", f"labelbox-dataset:{DATASET}",
                       "--project", target)  # fmt: skip
    assert "Labelbox takes pre-labels only on rows in it" in message


def test_prelabel_from_global_keys_leaves_labelled_rows_alone_and_reports_unknown_keys(
    run: FinishedRun, fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    rows = _pool_rows(run)
    ids = pool_ids(run)
    classes = ["circle", "square", "triangle", "star"]
    fake_labelbox.projects.add_project("proj-label-3", classes=classes, data_rows=ids)
    keys = tmp_path / "keys.txt"
    lines = [r["data_row"]["global_key"] for r in rows] + [
        "not-a-key",
        "",
        rows[0]["data_row"]["global_key"],
    ]
    keys.write_text("\n".join(lines) + "\n")
    args = ("prelabel", "--run", run.run_id, "--pool", f"global-keys:{keys}", "--confidence", "0")
    printed = _vmt(*args, "--project", "proj-label-3")
    assert "12 rows of global-keys:" in printed
    assert "1 of 13 global keys match no data row (not-a-key)" in printed
    with_boxes = _rows_with_detections(run, "proj-label-3")
    assert with_boxes, "the trained model should find boxes on some pool rows"
    prelabelled = {r["dataRow"]["id"] for r in fake_labelbox.projects.prelabels("proj-label-3")}
    assert prelabelled == with_boxes

    again = _vmt(*args, "--project", "proj-label-3")
    assert "(pool predictions reused)" in again and "0 new" in again

    # the same rows labelled in another project: its pool file says so, nothing is sent there
    fake_labelbox.projects.add_project("proj-label-4", classes=classes, data_rows=ids,
                                       labelled=with_boxes)  # fmt: skip
    printed = _vmt(*args, "--project", "proj-label-4")
    assert f"{len(with_boxes)} labelled and 0 already pre-labelled rows left alone" in printed
    assert fake_labelbox.projects.prelabels("proj-label-4") == []


def _rows_with_detections(run: FinishedRun, project: str) -> set[str]:
    """Rows the model found boxes on, in the pool predicted from the keys pool of ``project``."""
    found: set[str] = set()
    for folder in _pool_folders(run):
        facts = orjson.loads((folder / "pool.json").read_bytes())
        if facts["pool"].endswith(f"-project-{project}.ndjson"):
            for p in artifacts.read_predictions(folder / artifacts.PREDICTIONS_FILE):
                if p.detections:
                    found.add(p.data_row_id)
    return found


@pytest.mark.parametrize(
    ("pool", "says"),
    [
        ("labelbox-projekt:abc", "unknown pool scheme 'labelbox-projekt'"),
        ("labelbox-dataset:", "has no id after the colon"),
        ("global-keys:/no/such/keys.txt", "global keys file not found"),
    ],
)
def test_a_bad_pool_is_refused_before_anything_is_predicted(
    run: FinishedRun, fake_labelbox: FakeLabelbox, pool: str, says: str
) -> None:
    message = _refused("prelabel", "--run", run.run_id, "--pool", pool, "-o", "x.ndjson")
    assert says in message
    assert "exportDataRowsInProjectPyApi" not in fake_labelbox.operations()


def test_select_by_predictions_made_elsewhere_on_a_project_pool(
    run: FinishedRun, fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    unlabelled = pool_ids(run)[4:]
    predictions = tmp_path / "predictions.ndjson"
    box = {"top": 1.0, "left": 1.0, "height": 5.0, "width": 5.0}
    predictions.write_bytes(b"".join(
        orjson.dumps({"uuid": f"u{i}", "dataRow": {"id": row}, "name": "circle",
                      "confidence": score, "bbox": box}) + b"\n"
        for i, (row, score) in enumerate([(unlabelled[0], 0.9), (unlabelled[1], 0.55)])
    ))  # fmt: skip
    out = tmp_path / "ranking.csv"
    pool = f"labelbox-project:{STAGING}"
    printed = _vmt("select", "--predictions", str(predictions), "--pool", pool,
                   "-s", "least_confidence", "-o", str(out))  # fmt: skip
    assert "of 8 pool rows ranked" in printed
    ranked = [r["data_row_id"] for r in read_ranking_csv(out)]
    assert set(ranked) <= set(unlabelled) and ranked.index(unlabelled[1]) < ranked.index(
        unlabelled[0]
    )
    assert (run.state_dir / "pools" / "exports" / f"labelbox-project-{STAGING}.ndjson").is_file()


def test_prelabel_without_a_pool_pre_labels_the_projects_unlabelled_rows(
    run: FinishedRun, fake_labelbox: FakeLabelbox
) -> None:
    printed = _vmt("prelabel", "--run", run.run_id, "--project", STAGING, "--confidence", "0")
    ids = pool_ids(run)
    prelabelled = {r["dataRow"]["id"] for r in fake_labelbox.projects.prelabels(STAGING)}
    assert prelabelled and prelabelled <= set(ids[4:])  # the 4 labelled rows are not the pool
    assert "exportDataRowsInProjectPyApi" in fake_labelbox.operations()
    assert "0 labelled" in printed  # nothing labelled was even offered
    assert "--pool" in _refused("prelabel", "--run", run.run_id, "-o", "x.ndjson")
