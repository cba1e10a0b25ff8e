"""A live dashboard (real uvicorn on 127.0.0.1, free port) over a store holding a finished
run, a second finished run, a failed run and a pending run; class names and the error message
hold ``<script>``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.builders.run_store import XSS, failed_run, finished_run
from tests.integration.service.live_server import serve_in_thread
from vmt.backends.factory import build_backends
from vmt.config import load_settings
from vmt.domain import Rejection
from vmt.pipeline.run_config import files_run_config
from vmt.pipeline.runner import Runner
from vmt.pipeline.store import RunStore

TOKEN = "dashboard-token-0123456789"
FAILURE = f"image folder missing {XSS}"


@dataclass
class Dashboard:
    url: str
    store: RunStore
    finished: str
    baseline: str
    failed: str
    pending: str


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Dashboard]:
    from vmt.service.dashboard.local_app import create_ui_app

    settings = load_settings(api_token=TOKEN, state_dir=tmp_path / "state")
    runner = Runner(settings, backends_factory=build_backends)
    store = runner.store
    baseline = finished_run(store, seed=2, class_names={"c0": XSS}, run_id="run-a-baseline")
    finished = finished_run(
        store,
        seed=1,
        class_names={"c0": XSS},
        rejections=[
            Rejection("image_missing", 3, "row-1", "no such file: a.jpg"),
            Rejection("image_missing", 9, "row-4", "no such file: b.jpg"),
            Rejection("box_outside_image", 7, "row-2", f"box past the edge {XSS}"),
        ],
        run_id="run-b-finished",
    )
    failed = failed_run(store, error=FAILURE, run_id="run-c-failed")
    pending = store.create_run(
        files_run_config(export=str(tmp_path / "none.ndjson"), out_dir=str(tmp_path / "out")),
        run_id="run-d-pending",
    )
    app = create_ui_app(settings, runner=runner)
    with serve_in_thread(app) as url:
        yield Dashboard(url, store, finished, baseline, failed, pending)
    store.close()
