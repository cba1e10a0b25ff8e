"""``vmt run --model-run ID --trainer local`` end to end against the fake Labelbox.

A tiny synthetic dataset is served by ``http.server`` on 127.0.0.1; its rows (``row_data`` =
the image URLs, with their splits) are registered as a model run in ``FakeLabelbox``; a
``vmt run`` subprocess with ``LABELBOX_API_KEY`` and ``VMT_LABELBOX_ENDPOINT`` exports the run
through the real SDK, downloads the images, trains the local detector, predicts, evaluates and
loads everything back. The fake then holds the status sequence, the predictions and the per-row
metrics; the API key appears in none of the output, events or run files.

The default test trains for 3 s, which usually leaves every score under the detector's 0.05
threshold (no boxes: the run must say so); the second one trains 40 epochs so that boxes come out
and checks them as Labelbox received them.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import VMT, cli_env
from tests.fakes.labelbox_server import API_KEY, FakeLabelbox
from vmt.domain import Split
from vmt.formats.export_options import auto_split
from vmt.pipeline.artifacts import SampleFile
from vmt.pipeline.store import EventRecord, RunRecord, RunState, RunStore
from vmt.synthetic import CLASSES, generate_dataset

MODEL_RUN = "clmr0e2e0000labelbox00001"
MODEL_ID = "clmodel0e2e00000000000001"
IMAGES = 36
TRAINED_EPOCHS = 40
"""Enough single-step epochs (28 training images) for scores above the 0.05 threshold."""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class Served:
    rows: list[dict[str, Any]]
    """The export rows registered in the fake (row_data = http URLs)."""
    image_requests: list[str]


@pytest.fixture
def served(tmp_path: Path, fake_labelbox: FakeLabelbox) -> Iterator[Served]:
    export = generate_dataset(tmp_path / "dataset", images=IMAGES, seed=11)
    requests: list[str] = []

    class Handler(_QuietHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=str(export.parent / "images"))
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        rows = [_as_labelbox_row(orjson.loads(line), base) for line in export.open("rb")]
        fake_labelbox.add_model_run(MODEL_RUN, rows=rows, classes=CLASSES, model_id=MODEL_ID)
        yield Served(rows, requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _as_labelbox_row(row: dict[str, Any], base: str) -> dict[str, Any]:
    """The synthetic row as Labelbox exports it for MODEL_RUN: the image is a URL."""
    row["data_row"]["row_data"] = f"{base}/{Path(row['data_row']['row_data']).name}"
    ((_, experiment),) = row["experiments"].items()
    ((_, run),) = experiment["runs"].items()
    row["experiments"] = {MODEL_ID: {**experiment, "runs": {MODEL_RUN: run}}}
    return row


def _split(row: dict[str, Any]) -> str:
    split: str = row["experiments"][MODEL_ID]["runs"][MODEL_RUN]["split"]
    return split


@dataclass
class Finished:
    result: subprocess.CompletedProcess[str]
    seconds: float
    run: RunRecord
    events: list[EventRecord]
    state_dir: Path
    run_dir: Path


def _vmt_run(tmp_path: Path, fake: FakeLabelbox, *args: str, **env: str) -> Finished:
    state = tmp_path / "state"
    started = time.monotonic()
    result = subprocess.run(
        [*VMT, "run", "--model-run", MODEL_RUN, "--trainer", "local", "--seed", "0", *args],
        env=cli_env(
            VMT_STATE_DIR=str(state),
            LABELBOX_API_KEY=API_KEY,
            VMT_LABELBOX_ENDPOINT=fake.endpoint,
            VMT_LABELBOX_POLL_SECONDS="0.05",
            VMT_LOCAL_DEVICE="cpu",
            COLUMNS="200",
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-4000:]
    store = RunStore(state / "runs.sqlite")
    try:
        (run,) = store.list_runs()
        events = store.events(run.id)
        run_dir = store.run_dir(run.id)
    finally:
        store.close()
    assert run.state is RunState.COMPLETE, run.error
    return Finished(result, seconds, run, events, state, run_dir)


def _evaluated_rows(served: Served) -> dict[str, dict[str, Any]]:
    return {r["data_row"]["id"]: r for r in served.rows if _split(r) in ("validation", "test")}


def test_a_model_run_completes_end_to_end_and_labelbox_holds_the_results(
    tmp_path: Path, fake_labelbox: FakeLabelbox, served: Served
) -> None:
    done = _vmt_run(tmp_path, fake_labelbox, "--train-seconds", "3")
    run_dir = done.run_dir

    # --- the status sequence and its metadata
    statuses = fake_labelbox.statuses(MODEL_RUN)
    sequence = [s["status"] for s in statuses]
    assert [s for i, s in enumerate(sequence) if i == 0 or sequence[i - 1] != s] == [
        "EXPORTING_DATA",
        "PREPARING_DATA",
        "TRAINING_MODEL",
        "COMPLETE",
    ]
    assert [s["metadata"]["stage"] for s in statuses] == [
        "export", "prepare", "train", "predict", "evaluate", "publish", "done",
    ]  # fmt: skip
    assert all(s["metadata"]["trainer"] == "local" for s in statuses)
    assert all(s["metadata"]["vmt_run_id"] == done.run.id for s in statuses)
    assert all("errorMessage" not in s for s in statuses)
    final = statuses[-1]["metadata"]
    assert 0.0 <= final["mAP"] <= final["AP50"] <= 1.0
    assert final["rows"] == final["samples"] == IMAGES and final["rejected"] == 0
    assert final["report"] == str(run_dir / "report.html")

    # --- every image came over HTTP, once
    assert sorted(served.image_requests) == sorted(
        "/" + Path(r["data_row"]["row_data"]).name for r in served.rows
    )

    # --- the predictions Labelbox holds are exactly the run's upload rows
    uploaded = [orjson.loads(x) for x in (run_dir / "predictions.ndjson").read_bytes().splitlines()]
    assert sorted(fake_labelbox.predictions(MODEL_RUN), key=lambda p: p["uuid"]) == sorted(
        uploaded, key=lambda p: p["uuid"]
    )
    assert final["labelbox_predictions_rows"] == len(uploaded)
    said_none = "no predictions to upload: the model predicted no boxes on any row" in [
        e.message for e in done.events
    ]
    assert said_none == (not uploaded)  # seconds of training usually leave scores below 0.05
    _check_predictions(fake_labelbox.predictions(MODEL_RUN), _evaluated_rows(served))

    # --- the per-row metrics: every evaluated row, nothing else
    evaluated = _evaluated_rows(served)
    assert len(evaluated) == round(IMAGES * 0.1) * 2
    metrics = fake_labelbox.metrics(MODEL_RUN)
    assert {m["dataRow"]["id"] for m in metrics} == set(evaluated)
    assert final["labelbox_metrics_rows"] == len(metrics)
    assert final["labelbox_metrics_failed_rows"] == 0
    for row_id in evaluated:
        names = {m["metricName"] for m in metrics if m["dataRow"]["id"] == row_id}
        assert {"error_score", "matched_boxes", "false_boxes", "missed_boxes"} <= names

    _check_key_stays_secret(done)
    print(
        f"\ne2e labelbox run (3 s training): {done.seconds:.1f}s, {len(served.rows)} rows, "
        f"{len(uploaded)} predictions, {len(metrics)} metric rows, "
        f"{len(fake_labelbox.imports_for(MODEL_RUN))} imports, mAP {final['mAP']:.3f}"
    )


@pytest.mark.slow  # heavy; CI runs it (make test-slow); covered lighter by the default suite
def test_a_trained_model_s_predictions_reach_labelbox_with_confidence_and_pixel_boxes(
    tmp_path: Path, fake_labelbox: FakeLabelbox, served: Served
) -> None:
    """Seconds of training leave the detector below its score threshold; this one trains long
    enough (fixed epochs) for boxes to come out, and checks them as Labelbox received them."""
    done = _vmt_run(
        tmp_path, fake_labelbox, "--train-seconds", "300", VMT_LOCAL_EPOCHS=str(TRAINED_EPOCHS)
    )
    predictions = fake_labelbox.predictions(MODEL_RUN)
    evaluated = _evaluated_rows(served)
    assert len({p["dataRow"]["id"] for p in predictions}) >= len(evaluated) // 2
    _check_predictions(predictions, evaluated)
    final = fake_labelbox.statuses(MODEL_RUN)[-1]["metadata"]
    assert final["labelbox_predictions_rows"] == len(predictions) > 0
    assert final["labelbox_predictions_failed_rows"] == 0
    assert {m["dataRow"]["id"] for m in fake_labelbox.metrics(MODEL_RUN)} == set(evaluated)
    _check_key_stays_secret(done)
    print(
        f"\ne2e labelbox run ({TRAINED_EPOCHS} epochs): {done.seconds:.1f}s, "
        f"{len(predictions)} predictions on {len({p['dataRow']['id'] for p in predictions})} "
        f"of {len(evaluated)} rows, mAP {final['mAP']:.3f}, AP50 {final['AP50']:.3f}"
    )


def _check_predictions(
    predictions: list[dict[str, Any]], evaluated: dict[str, dict[str, Any]]
) -> None:
    """Labelbox rows: confidence in (0, 1], pixel boxes inside the image, evaluated rows only."""
    for p in predictions:
        assert set(p) == {"uuid", "dataRow", "name", "bbox", "confidence"}
        assert p["dataRow"]["id"] in evaluated and p["name"] in CLASSES
        assert 0.0 < p["confidence"] <= 1.0
        size = evaluated[p["dataRow"]["id"]]["media_attributes"]
        box = p["bbox"]
        assert box["width"] > 0 and box["height"] > 0
        assert box["left"] >= 0 and box["left"] + box["width"] <= size["width"] + 1e-6
        assert box["top"] >= 0 and box["top"] + box["height"] <= size["height"] + 1e-6
    assert len({p["uuid"] for p in predictions}) == len(predictions)


def _check_key_stays_secret(done: Finished) -> None:
    """The API key is in neither the output, the run's events nor any file under the state."""
    assert API_KEY not in done.result.stdout + done.result.stderr
    assert API_KEY not in orjson.dumps([(e.message, e.data) for e in done.events]).decode()
    files = [path for path in done.state_dir.rglob("*") if path.is_file()]
    assert len(files) > 10
    for path in files:
        assert API_KEY.encode() not in path.read_bytes(), path


@pytest.mark.slow  # heavy; CI runs it (make test-slow); covered lighter by the default suite
def test_rows_without_a_split_get_one_written_back_and_a_later_run_reuses_them(
    tmp_path: Path, fake_labelbox: FakeLabelbox, served: Served
) -> None:
    """``--unassigned auto`` on a model run whose rows have no split: the run assigns them,
    Labelbox then holds those splits, and a second run without the option trains on them."""
    rows = served.rows
    for row in rows:
        del row["experiments"][MODEL_ID]["runs"][MODEL_RUN]["split"]
    ids = [r["data_row"]["id"] for r in rows]
    fake_labelbox.add_model_run(
        MODEL_RUN,
        rows=rows,
        classes=CLASSES,
        model_id=MODEL_ID,
        data_splits=dict.fromkeys(ids, "UNASSIGNED"),
    )
    first = _vmt_run(
        tmp_path / "first", fake_labelbox, "--train-seconds", "2", "--unassigned", "auto"
    )

    expected = {i: auto_split(i) for i in ids}
    assert set(expected.values()) == {Split.TRAINING, Split.VALIDATION, Split.TEST}
    assert _sample_splits(first.run_dir) == expected
    assert fake_labelbox.model_runs[MODEL_RUN].data_splits == {
        i: split.value.upper() for i, split in expected.items()
    }
    assert any("written back to the model run" in e.message for e in first.events)
    evaluated = {i for i, split in expected.items() if split is not Split.TRAINING}
    assert {m["dataRow"]["id"] for m in fake_labelbox.metrics(MODEL_RUN)} == evaluated

    second = _vmt_run(tmp_path / "second", fake_labelbox, "--train-seconds", "2")
    assert _sample_splits(second.run_dir) == expected
    assert not any("written back" in e.message for e in second.events)
    assert fake_labelbox.operations().count("assignDataSplitPyApi") == 3


def _sample_splits(run_dir: Path) -> dict[str, Split]:
    return {s.data_row_id: s.split for s in SampleFile(run_dir / "samples.jsonl")}
