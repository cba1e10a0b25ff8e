"""``vmt run --trainer local`` end to end in subprocesses, on a tiny synthetic dataset with
seconds of training: a SIGKILL during training then two concurrent ``vmt resume``; bad rows
(broken JSON, missing files, 404 and unreachable URLs) reported by reason and line; a run whose
every row is bad fails and ``vmt runs show`` says why; ``vmt predict`` reuses the model."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import VMT, cli_env
from vmt.pipeline.protocols import Stage
from vmt.pipeline.store import RunState, RunStore
from vmt.synthetic import generate_dataset

DONE_BEFORE = "stage already done; not redone"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic model-run export (PNG files referenced by absolute path)."""
    return generate_dataset(tmp_path_factory.mktemp("dataset"), images=30, seed=5)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(VMT_STATE_DIR=str(tmp_path / "state"), COLUMNS="250", VMT_LOCAL_DEVICE="cpu")


def _store(env: dict[str, str]) -> RunStore:
    return RunStore(Path(env["VMT_STATE_DIR"]) / "runs.sqlite")


def _vmt(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VMT, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _popen(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*VMT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _events(store: RunStore, run_id: str, message: str) -> list[dict[str, Any]]:
    return [e.data for e in store.events(run_id) if e.message == message]


def _wait_for(predicate: Any, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_during_training_then_concurrent_resumes(
    dataset: Path, env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "VMT_LOCAL_EPOCHS": "3"}
    out = tmp_path / "out"
    run = _popen(
        env, "run", "--export", str(dataset), "--trainer", "local", "--out", str(out),
        "--train-seconds", "120", "--seed", "0",
    )  # fmt: skip
    store = _store(env)
    try:
        run_id = _wait_for(
            lambda: next(iter(r.id for r in store.list_runs()), None), timeout=60, what="a run"
        )
        _wait_for(
            lambda: _events(store, run_id, "local training epoch"),
            timeout=180,
            what="a first epoch (checkpoint) of training",
        )
        os.kill(run.pid, signal.SIGKILL)
        run.wait(30)
        assert run.returncode == -signal.SIGKILL

        killed = store.get_run(run_id)
        assert killed.state is RunState.RUNNING and killed.stage is Stage.TRAIN
        epochs_before = len(_events(store, run_id, "local training epoch"))
        assert "interrupted" in _vmt(env, "runs").stdout

        first, second = _popen(env, "resume", run_id), _popen(env, "resume", run_id)
        results = [p.communicate(timeout=240) for p in (first, second)]
        codes = sorted((first.returncode, second.returncode))
        assert codes == [0, 1], results
        loser = results[[first.returncode, second.returncode].index(1)]
        assert f"run {run_id} is already being advanced by process" in loser[1]
        assert "Traceback" not in loser[1]

        done = store.get_run(run_id)
        assert done.state is RunState.COMPLETE, done.error
        # training continued from its last checkpoint, not from scratch
        (resumed,) = _events(store, run_id, "local training resumed")
        assert resumed["after_epoch"] >= 1
        # each epoch's checkpoint is durable before its event is recorded, so a kill between the
        # two leaves the checkpoint (what resume uses) one epoch ahead of the events, never behind
        assert epochs_before <= resumed["after_epoch"] <= epochs_before + 1
        # export and prepare ran once: the resume found them done
        for stage in (Stage.EXPORT, Stage.PREPARE):
            assert store.stage(run_id, stage).attempts == 1
            assert any(e.message == DONE_BEFORE and e.stage is stage for e in store.events(run_id))
        assert store.stage(run_id, Stage.TRAIN).attempts == 2
        assert (out / "predictions.ndjson").is_file() and (out / "report.html").is_file()
        metrics = orjson.loads((out / "metrics.json").read_bytes())
        assert "map_50" in metrics
    finally:
        if run.poll() is None:
            run.kill()
        store.close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def image_server(dataset: Path) -> Iterator[str]:
    handler = partial(_Quiet, directory=str(dataset.parent / "images"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rows(dataset: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in dataset.read_bytes().splitlines()]


def test_bad_rows_are_reported_and_the_run_completes(
    dataset: Path, env: dict[str, str], tmp_path: Path, image_server: str
) -> None:
    rows = _rows(dataset)
    images = dataset.parent / "images"
    not_an_image = tmp_path / "not-an-image.png"
    not_an_image.write_bytes(b"this is text, not a PNG")
    lines = [orjson.dumps(row) for row in rows]
    # half of the good rows come over HTTP, as URLs
    for i in range(0, len(rows), 2):
        row = rows[i]
        row["data_row"]["row_data"] = f"{image_server}/{Path(row['data_row']['row_data']).name}"
        lines[i] = orjson.dumps(row)
    # rows made bad, each in its own way (1-based line numbers after the insertions below)
    bad = {
        3: ("image_missing", str(images / "no-such-file.png")),
        5: ("image_fetch_failed", f"{image_server}/no-such-image.png"),
        7: ("image_fetch_failed", f"http://127.0.0.1:{_closed_port()}/x.png"),
        9: ("image_not_supported", str(not_an_image)),
    }
    for line_no, (_, uri) in bad.items():
        row = orjson.loads(lines[line_no - 1])
        row["data_row"]["row_data"] = uri
        row["media_attributes"] = {}  # no size: it has to come from the image
        lines[line_no - 1] = orjson.dumps(row)
    lines.insert(10, b'{"data_row": {"id": "broken"')  # line 11: broken JSON
    export = tmp_path / "export.ndjson"
    export.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out"

    result = _vmt(
        env, "run", "--export", str(export), "--trainer", "local", "--out", str(out),
        "--train-seconds", "3", "--seed", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]

    store = _store(env)
    try:
        (run,) = store.list_runs()
        assert run.state is RunState.COMPLETE
        rejections = {
            r["line"]: r
            for r in map(orjson.loads, (store.run_dir(run.id) / "rejections.jsonl").open("rb"))
        }
    finally:
        store.close()
    expected = {line: reason for line, (reason, _) in bad.items()} | {11: "malformed_json"}
    assert {line: r["reason"] for line, r in rejections.items()} == expected
    assert "no-such-image.png" in rejections[5]["detail"]

    shown = _vmt(env, "runs", "show", run.id).stdout
    assert "Rejected rows: 5" in shown
    for reason in ("image_missing", "image_fetch_failed", "image_not_supported", "malformed_json"):
        assert reason in shown

    # the trained model labels new rows (every split, boxes or not)
    new_rows = tmp_path / "new.ndjson"
    new_rows.write_bytes(b"\n".join(orjson.dumps(r) for r in _rows(dataset)[:5]) + b"\n")
    predicted = _vmt(
        env, "predict", "--run", run.id, "--export", str(new_rows), "-o", str(tmp_path / "p.ndjson")
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert "5 rows predicted" in predicted.stdout
    for line in (tmp_path / "p.ndjson").read_bytes().splitlines():
        row = orjson.loads(line)
        assert set(row) == {"uuid", "dataRow", "name", "bbox", "confidence"}
        assert 0.0 <= row["confidence"] <= 1.0


def test_a_run_whose_every_row_is_bad_fails_and_runs_show_says_why(
    dataset: Path, env: dict[str, str], tmp_path: Path
) -> None:
    lines = []
    for i, row in enumerate(_rows(dataset)[:6]):
        row["data_row"]["row_data"] = f"/nowhere/missing-{i}.png"
        lines.append(orjson.dumps(row))
    export = tmp_path / "export.ndjson"
    export.write_bytes(b"\n".join(lines) + b"\n")

    result = _vmt(env, "run", "--export", str(export), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "every row was rejected: 6 rows, none usable (6 image_missing)" in result.stderr
    assert "Traceback" not in result.stderr

    listing = _vmt(env, "runs").stdout
    assert "failed" in listing
    store = _store(env)
    try:
        (run,) = store.list_runs()
    finally:
        store.close()
    shown = _vmt(env, "runs", "show", run.id).stdout
    assert "Data preparation failed: every row was rejected" in shown
    assert "Rejected rows: 6 (image_missing: 6)" in shown
    assert "/nowhere/missing-0.png" in shown
    status = orjson.loads((tmp_path / "out" / "status.json").read_bytes())
    assert status["status"] == "FAILED" and len(status["error"]) <= 255


def test_a_project_export_gets_auto_splits_without_unassigned(
    dataset: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """A project export carries no split: with no --unassigned the run assigns them (auto) and
    says so, so its rows reach the trainer (here all refused for their missing images, which
    fails the run before any training) instead of all being unassigned_split."""
    lines = []
    for i, row in enumerate(_rows(dataset)[:6]):
        (model,) = row.pop("experiments").values()
        (run,) = model["runs"].values()
        row["projects"] = {"project-1": {"name": "p", "labels": run["labels"]}}
        row["data_row"]["row_data"] = f"/nowhere/missing-{i}.png"
        lines.append(orjson.dumps(row))
    export = tmp_path / "project.ndjson"
    export.write_bytes(b"\n".join(lines) + b"\n")

    result = _vmt(env, "run", "--export", str(export), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "every row was rejected: 6 rows, none usable (6 image_missing)" in result.stderr
    store = _store(env)
    try:
        (run,) = store.list_runs()
    finally:
        store.close()
    shown = _vmt(env, "runs", "show", run.id).stdout
    assert "no row has a split (a project export): splits assigned by --unassigned auto" in shown


def test_demo_generates_data_runs_the_loop_and_prints_the_metrics(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    result = _vmt(
        {**env, "VMT_LOCAL_EPOCHS": "1"},
        "demo", "--out", str(out), "--images", "10", "--train-seconds", "1", "--seed", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Detection metrics (COCO)" in result.stdout
    assert "AP50" in result.stdout and "test" in result.stdout
    report = out / "results" / "report.html"
    assert f"report:  {report}" in result.stdout
    assert report.is_file() and (out / "results" / "metrics.json").is_file()
    assert len(list((out / "dataset" / "images").glob("*.png"))) == 10
    assert "complete" in _vmt(env, "runs").stdout
