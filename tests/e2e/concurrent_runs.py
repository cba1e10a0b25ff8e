"""Several "Train model" clicks at once on one ``vmt serve`` with ONE worker thread.

The real app (webhook, run store, worker, runner, factory, Vertex and local trainers) serves
on loopback; the outside world is the fake Labelbox (real SDK over HTTP), the fake Vertex AI
(real SDK over HTTP, each training pipeline held ``hold_seconds`` of wall clock) and the GCS
emulator; images are served by a loopback file server (opened to the service's outbound policy
with ``VMT_OUTBOUND_ALLOW``, as a team opens its private image hosts). Used by
``test_concurrent_runs.py`` (small) and ``bench/serve_concurrency.py`` (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.test_service_labelbox import (
    AUTH,
    MODEL,
    classes_of,
    deliver,
    labelbox_rows,
    service_settings,
)
from tests.fakes.gcp import LocalGcp, local_gcp
from tests.fakes.labelbox_server import FakeLabelbox
from tests.integration.service.live_server import serve_in_thread
from vmt.synthetic import generate_dataset

VERTEX = "vertex_automl_object_detection"
LOCAL = "local_object_detection"


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class Outcome:
    """What happened, in seconds since the first delivery (``time.monotonic()`` based)."""

    started: float
    vertex_runs: list[str]
    local_runs: list[str]
    pipelines_created: list[float] = field(default_factory=list)
    """When each training pipeline was created."""
    first_pipeline_finished: float | None = None
    states: dict[str, str] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    """Run id -> when the service first showed it ended."""
    local_training: tuple[float, float] | None = None
    """(started, finished) of the local run's train stage."""

    def all_reached_training_before_the_first_finished(self) -> bool:
        first = self.first_pipeline_finished
        return (
            len(self.pipelines_created) == len(self.vertex_runs)
            and first is not None
            and max(self.pipelines_created) < first
        )


@contextmanager
def _image_server(folder: Path) -> Iterator[str]:
    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(folder)))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{files.server_address[1]}/images/"
    finally:
        files.shutdown()
        files.server_close()


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_concurrently(
    root: Path,
    *,
    vertex_runs: int,
    local_runs: int = 0,
    hold_seconds: float,
    images: int = 20,
    local_train_seconds: float = 10.0,
    poll_seconds: float = 1.0,
    timeout: float = 600.0,
) -> Outcome:
    """Deliver ``local_runs`` local then ``vertex_runs`` Vertex model runs to one service
    with one worker thread, and follow them to their end."""
    data = root / "data"
    export = generate_dataset(data, images=images, seed=5)
    fake = FakeLabelbox(root / "fake-labelbox").start()
    try:
        with _image_server(data) as base, local_gcp(training_seconds=hold_seconds) as gcp:
            env = {
                **gcp.settings_env(),
                # the service fetches images only from public https hosts unless told: the
                # loopback image server is opened to it, as a team opens its private hosts
                "VMT_OUTBOUND_ALLOW": "127.0.0.1",
                "VMT_OUTBOUND_ALLOW_HTTP": "true",
                "VMT_VERTEX_POLL_SECONDS": str(poll_seconds),
                "VMT_VERTEX_POLL_MAX_SECONDS": str(poll_seconds),
            }
            with _environment(env):
                return _deliver_and_follow(
                    root, fake, gcp, export, base, vertex_runs, local_runs,
                    local_train_seconds, timeout,
                )  # fmt: skip
    finally:
        fake.stop()


def _deliver_and_follow(
    root: Path,
    fake: FakeLabelbox,
    gcp: LocalGcp,
    export: Path,
    image_base: str,
    vertex_runs: int,
    local_runs: int,
    local_train_seconds: float,
    timeout: float,
) -> Outcome:
    from vmt.service.app import create_app

    kinds = [LOCAL] * local_runs + [VERTEX] * vertex_runs
    for index in range(len(kinds)):
        rows = labelbox_rows(export, image_base=image_base)
        for row in rows:
            run = row["experiments"][MODEL]["runs"]
            run[f"mr-{index}"] = run.pop(next(iter(run)))
        fake.add_model_run(f"mr-{index}", rows=rows, classes=classes_of(rows), model_id=MODEL)
    settings = service_settings(
        root, fake.endpoint, train_seconds=local_train_seconds, local_device="cpu"
    )
    app = create_app(settings, model_types=[VERTEX, LOCAL], worker_threads=1)
    with serve_in_thread(app) as url:
        started, started_wall = time.monotonic(), time.time()
        runs: dict[str, str] = {}
        for index, kind in enumerate(kinds):
            answer = deliver(url, kind, model_run_id=f"mr-{index}")
            assert answer.status_code == 202, answer.text
            runs[answer.json()["run_id"]] = kind
        outcome = Outcome(
            started=started,
            vertex_runs=[r for r, k in runs.items() if k == VERTEX],
            local_runs=[r for r, k in runs.items() if k == LOCAL],
        )
        _follow(url, outcome, timeout)
    outcome.pipelines_created = sorted(t - started for t in gcp.vertex.created.values())
    if gcp.vertex.finished:
        outcome.first_pipeline_finished = min(gcp.vertex.finished.values()) - started
    if outcome.local_runs:
        began, ended = _train_stage_span(settings.state_dir, outcome.local_runs[0])
        outcome.local_training = (began - started_wall, ended - started_wall)
    return outcome


def _follow(url: str, outcome: Outcome, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(outcome.vertex_runs) | set(outcome.local_runs)
    while pending and time.monotonic() < deadline:
        for run_id in sorted(pending):
            view = httpx.get(f"{url}/runs/{run_id}", headers=AUTH, timeout=30).json()
            if view["state"] in ("complete", "failed", "cancelled"):
                outcome.states[run_id] = view["state"]
                outcome.ended[run_id] = time.monotonic() - outcome.started
                pending.discard(run_id)
        time.sleep(0.2)
    for run_id in pending:
        outcome.states[run_id] = "unfinished"


def _train_stage_span(state_dir: Path, run_id: str) -> tuple[float, float]:
    """(started, finished) wall-clock times of the run's train stage, from the run store."""
    from vmt.config import load_settings
    from vmt.pipeline.protocols import Stage
    from vmt.pipeline.store import RunStore

    store = RunStore.for_settings(load_settings(state_dir=state_dir))
    record = store.stage(run_id, Stage.TRAIN)
    assert record.started is not None and record.finished is not None
    return record.started, record.finished
