"""Pre-label imports and project batches through the real labelbox SDK and the fake Labelbox:
deterministic names, resume without duplicates (also after a SIGKILL half-way), per-row errors,
labelled and already pre-labelled rows left alone, classes missing from the ontology reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import cli_env
from tests.fakes.labelbox_server import FakeLabelbox
from vmt.backends.labelbox.batches import batch_parts, send_batches
from vmt.backends.labelbox.prelabels import import_prelabels
from vmt.backends.labelbox.project import LabelboxProject
from vmt.config import load_settings
from vmt.errors import InputError, NotFoundError
from vmt.retry import Backoff

PROJECT = "proj-1"
CREATE_MAL = "createMALPredictionImportByFilePyApi"
CREATE_BATCH = "createBatchV2PyApi"
FAST = Backoff(base=0.001, cap=0.001, deadline=5.0, max_attempts=3, sleep=lambda s: None)


def _env(fake: FakeLabelbox, state: Path) -> dict[str, str]:
    return {
        "LABELBOX_API_KEY": fake.api_key,
        "VMT_LABELBOX_ENDPOINT": fake.endpoint,
        "VMT_STATE_DIR": str(state),
        "VMT_PREDICTION_CHUNK_SIZE": "2",
        "VMT_LABELBOX_POLL_SECONDS": "0.01",
    }


@pytest.fixture
def project(
    fake_labelbox: FakeLabelbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> LabelboxProject:
    fake_labelbox.projects.add_project(
        PROJECT,
        classes=["car", "bird"],
        labelled={"dr-3"},
        data_rows=[f"dr-{i}" for i in range(1, 8)],
    )
    for key, value in _env(fake_labelbox, tmp_path / "state").items():
        monkeypatch.setenv(key, value)
    return LabelboxProject(load_settings(), PROJECT, backoff=FAST)


def _row(i: int, data_row: str, name: str = "car", **extra: Any) -> dict[str, Any]:
    return {
        "uuid": f"00000000-0000-0000-0000-{i:012d}",
        "dataRow": {"id": data_row},
        "name": name,
        "bbox": {"top": 1.0, "left": 2.0, "height": 3.0, "width": 4.0},
        **extra,
    }


ROWS = [
    _row(1, "dr-1"),
    _row(2, "dr-1", "bird"),
    _row(3, "dr-2"),
    _row(4, "dr-3"),  # labelled: left alone
    _row(5, "dr-4", "truck"),  # not in the project's ontology: left out, reported
    _row(6, "dr-5"),
    _row(7, "dr-99"),  # not in the project: Labelbox rejects the row
    _row(8, "dr-6", "bird"),
]


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_prelabels_are_imported_in_named_chunks_and_a_rerun_uploads_nothing(
    project: LabelboxProject, fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    rows = _write(tmp_path / "mal.ndjson", ROWS)
    events: list[tuple[str, dict[str, object]]] = []
    summary = import_prelabels(
        project, rows_file=rows, prefix="vmt-r1-mal-p", labelled={"dr-3"},
        on_event=lambda m, d: events.append((m, d)),
    )  # fmt: skip
    imports = fake_labelbox.projects.imports_for(PROJECT)
    assert [i.name for i in imports] == ["vmt-r1-mal-p-0", "vmt-r1-mal-p-1", "vmt-r1-mal-p-2"]
    assert (summary.rows, summary.chunks, summary.uploaded_chunks) == (6, 3, 3)
    assert summary.skipped_labelled == 1 and summary.classes_left_out == {"truck": 1}
    assert summary.failed_rows == 1
    failure = orjson.loads(summary.failure_files[2].read_bytes())
    assert failure["dataRow"]["id"] == "dr-99"
    assert failure["errors"][0]["name"] == "DataRowNotInProject"
    imported = fake_labelbox.projects.prelabels(PROJECT)
    assert sorted(r["uuid"][-2:] for r in imported) == ["01", "02", "03", "06", "08"]
    assert all("confidence" not in r for r in imported)
    assert ("pre-labels of classes missing from the project's ontology were left out",
            {"classes": {"truck": 1}}) in events  # fmt: skip

    creates = fake_labelbox.operations().count(CREATE_MAL)
    again = import_prelabels(project, rows_file=rows, prefix="vmt-r1-mal-p", labelled={"dr-3"})
    assert fake_labelbox.operations().count(CREATE_MAL) == creates
    assert (again.reused_chunks, again.uploaded_chunks, again.failed_rows) == (3, 0, 1)

    # another import (another run or confidence) never overwrites what this one pre-labelled
    other = import_prelabels(project, rows_file=rows, prefix="vmt-r2-mal-p", labelled={"dr-3"})
    assert other.skipped_prelabelled == 4  # dr-1, dr-2, dr-5, dr-6
    assert (other.rows, other.data_rows) == (1, 1)  # only dr-99's row is left (and fails again)


def test_a_missing_project_says_so(
    fake_labelbox: FakeLabelbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in _env(fake_labelbox, tmp_path / "state").items():
        monkeypatch.setenv(key, value)
    with pytest.raises(NotFoundError, match="no project nope"):
        LabelboxProject(load_settings(), "nope", backoff=FAST).class_names()


_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from vmt.backends.labelbox.batches import send_batches
    from vmt.backends.labelbox.prelabels import import_prelabels
    from vmt.backends.labelbox.project import LabelboxProject
    from vmt.config import load_settings

    project = LabelboxProject(load_settings(), "proj-1")
    if sys.argv[1] == "prelabel":
        rows = Path(sys.argv[2])
        import_prelabels(project, rows_file=rows, prefix="vmt-r1-mal-p", labelled={"dr-3"})
    else:
        ids = [f"dr-{i}" for i in range(1, 8)]
        send_batches(project, name="round-1", data_row_ids=ids, priority=2, size=2)
    """
)


def _kill_child_on(
    fake: FakeLabelbox, operation: str, nth: int, env: dict[str, str], *args: str
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, *args], env=cli_env(**env), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip

    def kill(request: Any) -> None:
        if request.operation == operation and fake.operations().count(operation) == nth:
            os.kill(child.pid, signal.SIGKILL)  # the request reaches Labelbox, the answer does not

    fake.on_request = kill
    try:
        assert child.wait(timeout=120) == -signal.SIGKILL, (
            child.stderr.read() if child.stderr else ""
        )
    finally:
        fake.on_request = None
        if child.stdout:
            child.stdout.close()
        if child.stderr:
            child.stderr.close()


def test_a_prelabel_import_killed_half_way_resumes_without_duplicates(
    project: LabelboxProject, fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    rows = _write(tmp_path / "mal.ndjson", ROWS)
    _kill_child_on(fake_labelbox, CREATE_MAL, 2, _env(fake_labelbox, tmp_path / "state"),
                   "prelabel", str(rows))  # fmt: skip
    assert len(fake_labelbox.projects.imports_for(PROJECT)) == 2  # the second never waited on

    events: list[str] = []
    summary = import_prelabels(
        project, rows_file=rows, prefix="vmt-r1-mal-p", labelled={"dr-3"},
        on_event=lambda m, d: events.append(m),
    )  # fmt: skip
    names = [i.name for i in fake_labelbox.projects.imports_for(PROJECT)]
    assert names == ["vmt-r1-mal-p-0", "vmt-r1-mal-p-1", "vmt-r1-mal-p-2"]
    assert fake_labelbox.operations().count(CREATE_MAL) == 3
    assert events.count("labelbox pre-label import already exists: not uploaded again") == 1
    assert (summary.reused_chunks, summary.uploaded_chunks) == (2, 1)
    uuids = [r["uuid"] for r in fake_labelbox.projects.prelabels(PROJECT)]
    assert len(uuids) == len(set(uuids)) == 5


def test_batches_hold_at_most_size_rows_and_are_made_once(
    project: LabelboxProject, fake_labelbox: FakeLabelbox
) -> None:
    ids = [f"dr-{i}" for i in range(10, 17)]
    first = send_batches(project, name="round-1", data_row_ids=ids, priority=2, size=3)
    assert first.created == ["round-1-001", "round-1-002", "round-1-003"]
    made = {b.name: b for b in fake_labelbox.projects.batches(PROJECT)}
    assert [made[n].data_row_ids for n in first.created] == [ids[0:3], ids[3:6], ids[6:7]]
    assert {made[n].priority for n in first.created} == {2}
    again = send_batches(project, name="round-1", data_row_ids=ids, priority=2, size=3)
    assert again.created == [] and again.existing == first.created
    assert fake_labelbox.operations().count(CREATE_BATCH) == 3


def test_a_batch_of_a_thousand_rows_goes_through_the_async_task(
    project: LabelboxProject, fake_labelbox: FakeLabelbox
) -> None:
    ids = [f"dr-big-{i:04d}" for i in range(1000)]
    summary = send_batches(project, name="big", data_row_ids=ids, priority=1)
    assert summary.created == ["big"]
    assert "addDataRowsToBatchAsyncPyApi" in fake_labelbox.operations()
    (big,) = [b for b in fake_labelbox.projects.batches(PROJECT) if b.name == "big"]
    assert big.data_row_ids == ids and big.priority == 1


@pytest.mark.parametrize(
    ("rows", "size", "expected"),
    [
        (0, 3, []),
        (3, 3, [("b", 0, 3)]),
        (4, 3, [("b-001", 0, 3), ("b-002", 3, 4)]),
        (
            250_001,
            100_000,
            [("b-001", 0, 100_000), ("b-002", 100_000, 200_000), ("b-003", 200_000, 250_001)],
        ),
    ],
)
def test_batch_parts(rows: int, size: int, expected: list[tuple[str, int, int]]) -> None:
    assert batch_parts("b", rows, size=size) == expected


def test_a_bad_priority_is_refused_before_any_call(
    project: LabelboxProject, fake_labelbox: FakeLabelbox
) -> None:
    before = len(fake_labelbox.operations())
    with pytest.raises(InputError, match="--priority must be 1"):
        send_batches(project, name="x", data_row_ids=["dr-1"], priority=9)
    assert len(fake_labelbox.operations()) == before


def test_batches_killed_half_way_resume_without_duplicates(
    project: LabelboxProject, fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    _kill_child_on(fake_labelbox, CREATE_BATCH, 2, _env(fake_labelbox, tmp_path / "state"), "batch")
    ids = [f"dr-{i}" for i in range(1, 8)]
    summary = send_batches(project, name="round-1", data_row_ids=ids, priority=2, size=2)
    assert summary.existing == ["round-1-001", "round-1-002"]
    assert summary.created == ["round-1-003", "round-1-004"]
    names = [b.name for b in fake_labelbox.projects.batches(PROJECT) if b.name != "existing"]
    assert sorted(names) == ["round-1-001", "round-1-002", "round-1-003", "round-1-004"]
