"""Pages of the runs list: newest first, filtered by state, counted, answered by an index."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmt.pipeline.protocols import Stage
from vmt.pipeline.run_config import files_run_config
from vmt.pipeline.store import RunState, RunStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    s = RunStore(tmp_path / "runs.sqlite")
    config = files_run_config(export="/data/export.ndjson", out_dir="/out")
    for i in range(12):
        run_id = s.create_run(config, run_id=f"run-{i:02d}")
        if i % 3 == 0:
            s.set_run_state(run_id, RunState.FAILED, error="boom")
    yield s
    s.close()


def test_pages_are_newest_first_and_do_not_overlap(store: RunStore) -> None:
    first = [r.id for r in store.page_runs(limit=5)]
    second = [r.id for r in store.page_runs(limit=5, offset=5)]
    last = [r.id for r in store.page_runs(limit=5, offset=10)]
    assert first + second + last == [f"run-{i:02d}" for i in reversed(range(12))]
    assert store.count_runs() == 12


def test_state_filter_and_count(store: RunStore) -> None:
    failed = [r.id for r in store.page_runs(state=RunState.FAILED, limit=50)]
    assert failed == ["run-09", "run-06", "run-03", "run-00"]
    assert store.count_runs(state=RunState.FAILED) == 4
    assert store.count_runs(state=RunState.COMPLETE) == 0


def test_stages_and_handles_of_a_page(store: RunStore) -> None:
    store.start_stage("run-01", Stage.EXPORT)
    store.set_handle("run-01", "vertex.cost_milli_node_hours", "1500")
    stages = store.stages_of(["run-01", "run-02"])
    assert stages["run-01"][Stage.EXPORT].attempts == 1
    assert set(stages["run-02"]) == set(Stage)
    assert store.handles_of(["run-01", "run-02"], "vertex.cost_milli_node_hours") == {
        "run-01": "1500"
    }
    assert store.stages_of([]) == {} and store.handles_of([], "x") == {}


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        (
            "SELECT * FROM runs ORDER BY created DESC, id DESC LIMIT 50 OFFSET 500",
            "runs_by_created",
        ),
        (
            "SELECT * FROM runs WHERE state = 'failed' ORDER BY created DESC, id DESC LIMIT 50",
            "runs_by_state",
        ),
        ("SELECT COUNT(*) FROM runs WHERE state = 'failed'", "runs_by_state"),
    ],
)
def test_page_queries_use_an_index(store: RunStore, sql: str, index: str) -> None:
    with sqlite3.connect(store.db_path) as conn:
        plan = " ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
    assert index in plan
    assert "TEMP B-TREE" not in plan  # no sort of the whole table
