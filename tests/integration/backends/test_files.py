import gzip
from pathlib import Path

import orjson
import pytest

from vmt.backends.files import FileSource, FolderSink
from vmt.errors import InputError
from vmt.pipeline.context import DetachedRunContext
from vmt.pipeline.protocols import MODEL_HANDLE, REPORT_HANDLE, RunStatus

EXPORT = b'{"data_row": {"id": "a", "row_data": "img/a.png"}}\n{"data_row": {"id": "b"}}\n'


def _ctx(tmp_path: Path, **handles: str) -> DetachedRunContext:
    return DetachedRunContext("run-1", tmp_path / "run", handles)


@pytest.mark.parametrize("compressed", [False, True])
def test_file_source_copies_the_export(tmp_path: Path, compressed: bool) -> None:
    src = tmp_path / ("export.ndjson.gz" if compressed else "export.ndjson")
    src.write_bytes(gzip.compress(EXPORT) if compressed else EXPORT)
    dest = tmp_path / "copy.ndjson"
    FileSource(src).export(_ctx(tmp_path), dest)
    assert dest.read_bytes() == EXPORT


def test_file_source_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"export file not found: .*nope\.ndjson"):
        FileSource(tmp_path / "nope.ndjson").export(_ctx(tmp_path), tmp_path / "x")


def test_file_source_corrupt_gzip_is_an_input_error(tmp_path: Path) -> None:
    src = tmp_path / "export.ndjson.gz"
    src.write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="cannot read export file"):
        FileSource(src).export(_ctx(tmp_path), tmp_path / "x")


def test_folder_sink_records_statuses(tmp_path: Path) -> None:
    sink = FolderSink(tmp_path / "out")
    ctx = _ctx(tmp_path)
    sink.report_status(ctx, RunStatus.TRAINING_MODEL, metadata={"stage": "train"})
    sink.report_status(ctx, RunStatus.FAILED, metadata={"stage": "train"}, error="Training failed")
    history = [
        orjson.loads(x) for x in (tmp_path / "out" / "status.ndjson").read_bytes().splitlines()
    ]
    assert [h["status"] for h in history] == ["TRAINING_MODEL", "FAILED"]
    latest = orjson.loads((tmp_path / "out" / "status.json").read_bytes())
    assert latest["error"] == "Training failed" and latest["metadata"] == {"stage": "train"}


def test_folder_sink_publishes_results_and_the_model(tmp_path: Path) -> None:
    run = tmp_path / "runfiles"
    run.mkdir()
    files = {}
    for name in ("predictions.ndjson", "metrics.json", "row_metrics.ndjson", "report.html"):
        files[name] = run / name
        files[name].write_text(f"content of {name}")
    model = run / "model.pt"
    model.write_bytes(b"weights")
    ctx = _ctx(tmp_path, **{MODEL_HANDLE: str(model)})
    out = tmp_path / "out"
    for _ in range(2):  # idempotent
        FolderSink(out).publish(
            ctx,
            predictions=files["predictions.ndjson"],
            metrics=files["metrics.json"],
            row_metrics=files["row_metrics.ndjson"],
            report=files["report.html"],
        )
    for name in files:
        assert (out / name).read_text() == f"content of {name}"
    assert (out / "model" / "model.pt").read_bytes() == b"weights"
    assert ctx.get_handle(REPORT_HANDLE) == str(out / "report.html")
    assert not list(out.glob("*.partial"))
