"""LabelboxSource through the real SDK against the fake Labelbox: export, re-attach, splits."""

from __future__ import annotations

import gc
import json
import tracemalloc
from pathlib import Path

import pytest

from tests.fakes.labelbox_server import FakeLabelbox, make_export_row
from tests.integration.labelbox.conftest import FAST_BACKOFF, FileRunContext, settings_for
from vmt.backends.labelbox import LabelboxSource
from vmt.backends.labelbox.source import ERRORS_FILE, EXPORT_TASK_HANDLE

MR = "mr-source"


def _rows(n: int, split: str | None = "training") -> list[dict[str, object]]:
    return [make_export_row(i, model_run_id=MR, split=split) for i in range(n)]


def _read(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_export_writes_every_row_and_records_the_task(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    fake_labelbox.export_chunk_bytes = 2_000  # several file chunks
    rows = _rows(25)
    fake_labelbox.add_model_run(MR, rows=rows, classes=["car"])
    source = LabelboxSource(settings_for(fake_labelbox), MR, backoff=FAST_BACKOFF)
    dest = ctx.workdir / "export.ndjson"

    source.export(ctx, dest)

    assert _read(dest) == rows
    task_id = ctx.get_handle(EXPORT_TASK_HANDLE)
    assert task_id in fake_labelbox.export_tasks
    params = fake_labelbox.export_tasks[str(task_id)].params
    assert params["includeDataRowDetails"] is True and params["includeModelRunDetails"] is True
    assert fake_labelbox.operations().count("file:export") >= 3
    assert ctx.progress_calls[-1] == (25, 25, "rows exported")
    assert not dest.with_name(dest.name + ".partial").exists()
    assert source.feature_schema_ids() == {"car": "fs-car"}
    # the event names the task, not a file name that may be the caller's temporary one
    written = [data for message, data in ctx.events if message == "labelbox export written"]
    assert written == [{"rows": 25, "task_id": task_id}]


def test_a_restarted_export_reattaches_instead_of_exporting_again(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    fake_labelbox.export_polls = 3  # the task is still running when the process "dies"
    fake_labelbox.add_model_run(MR, rows=_rows(5), classes=["car"])
    settings = settings_for(fake_labelbox)
    dest = ctx.workdir / "export.ndjson"

    LabelboxSource(settings, MR, backoff=FAST_BACKOFF).export(ctx, dest)
    dest.unlink()
    restarted = FileRunContext(ctx.run_id, ctx.workdir)
    LabelboxSource(settings, MR, backoff=FAST_BACKOFF).export(restarted, dest)

    assert fake_labelbox.operations().count("exportDataRowsInModelRunPyApi") == 1
    assert len(_read(dest)) == 5
    assert "re-attached to labelbox export task" in restarted.messages()


def test_export_errors_are_saved_and_recorded_as_events(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    errors = [{"data_row_id": f"dr-{i}", "error": "media not processed"} for i in range(3)]
    fake_labelbox.add_model_run(MR, rows=_rows(4), classes=["car"], export_errors=errors)

    LabelboxSource(settings_for(fake_labelbox), MR, backoff=FAST_BACKOFF).export(
        ctx, ctx.workdir / "export.ndjson"
    )

    assert _read(ctx.workdir / ERRORS_FILE) == errors
    recorded = [data["error"] for message, data in ctx.events if message == "labelbox export error"]
    assert recorded == errors


def test_splits_come_from_model_run_data_rows_when_rows_carry_none(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext
) -> None:
    rows = _rows(250, split=None)  # more than one annotationGroups page (100)
    splits = {f"dr-{i:06d}": ("TRAINING", "VALIDATION", "TEST")[i % 3] for i in range(249)}
    fake_labelbox.add_model_run(MR, rows=rows, classes=["car"], data_splits=splits)
    dest = ctx.workdir / "export.ndjson"

    LabelboxSource(settings_for(fake_labelbox), MR, backoff=FAST_BACKOFF).export(ctx, dest)

    written = _read(dest)
    got = {
        r["data_row"]["id"]: r["experiments"]["model-1"]["runs"][MR].get("split")  # type: ignore[index]
        for r in written
    }
    assert got == {**{k: v.lower() for k, v in splits.items()}, "dr-000249": None}
    assert fake_labelbox.operations().count("modelRunPyApi") == 3
    assert not (ctx.workdir / "labelbox_splits.sqlite").exists()


def _peak_export_bytes(fake: FakeLabelbox, tmp: Path, rows: int) -> int:
    run_id = f"{MR}-{rows}"
    fake.add_model_run(
        run_id, rows=(make_export_row(i, model_run_id=run_id) for i in range(rows)), classes=["car"]
    )
    ctx = FileRunContext(f"run-{rows}", tmp / f"run-{rows}")
    dest = ctx.workdir / "export.ndjson"
    source = LabelboxSource(settings_for(fake), run_id, backoff=FAST_BACKOFF)
    source.connection.model_run()  # client set-up and first look-ups outside the measurement
    gc.collect()
    tracemalloc.start()
    try:
        source.export(ctx, dest)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(1 for _ in dest.open("rb")) == rows
    return peak


@pytest.mark.slow  # heavy; CI runs it (make test-slow); covered lighter by the default suite
def test_a_20000_row_export_streams_with_flat_memory(
    fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    fake_labelbox.export_chunk_bytes = 256 * 1024
    small = _peak_export_bytes(fake_labelbox, tmp_path, 2_000)
    large = _peak_export_bytes(fake_labelbox, tmp_path, 20_000)
    size = (tmp_path / "run-20000" / "export.ndjson").stat().st_size
    print(f"peak 2k={small / 1e6:.2f} MB, 20k={large / 1e6:.2f} MB, export={size / 1e6:.1f} MB")
    assert size > 10 * 1024 * 1024  # the whole export would not fit under the bound below
    assert large < 1.5 * small + 512 * 1024


@pytest.mark.parametrize("split", ["TRAINING", "validation"])
def test_rows_that_carry_a_split_do_not_query_data_rows(
    fake_labelbox: FakeLabelbox, ctx: FileRunContext, split: str
) -> None:
    fake_labelbox.add_model_run(MR, rows=_rows(3, split=split), classes=["car"])
    LabelboxSource(settings_for(fake_labelbox), MR, backoff=FAST_BACKOFF).export(
        ctx, ctx.workdir / "export.ndjson"
    )
    assert "modelRunPyApi" not in fake_labelbox.operations()
