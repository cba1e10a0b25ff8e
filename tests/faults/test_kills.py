"""Part 1 of the fault campaign: SIGKILL at any point, then ``vmt resume``.

A reference run (``vmt run --model-run MR --trainer vertex``, fake Labelbox, fake Vertex, GCS
emulator, image server, each behind a recording proxy) counts the external calls a whole run
makes. Kill points are drawn (seeded) over that range; for each, a fresh world runs the same
command and the process is SIGKILLed the moment it has sent call #k (the request still reaches
the backend: the answer is what is lost), then ``vmt resume`` finishes the run. Invariants: the
run completes; exactly one dataset, training pipeline and batch job in the fake Vertex, one
export task and one prediction import per chunk in the fake Labelbox; the predictions and
metrics uploaded equal the uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VMT, cli_env
from tests.fakes.flaky import FaultProxy
from tests.fakes.gcp import LocalGcp, local_gcp
from tests.fakes.labelbox_server import FakeLabelbox
from tests.faults import figures
from tests.faults.test_flaky_backends import MODEL, MODEL_RUN, _rows
from vmt.config import load_settings
from vmt.pipeline.store import RunStore
from vmt.synthetic import generate_dataset


class _Files(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class World:
    gcp: LocalGcp
    labelbox: FakeLabelbox
    proxies: list[FaultProxy]
    env: dict[str, str]
    state: Path
    calls: list[str] = field(default_factory=list)
    kill_at: int | None = None
    pid: int | None = None
    killed_at: str | None = None

    def count(self, method: str, path: str) -> None:
        self.calls.append(f"{method} {path.split('?')[0]}")
        if self.kill_at is not None and len(self.calls) == self.kill_at and self.pid:
            self.killed_at = self.calls[-1]
            os.kill(self.pid, signal.SIGKILL)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.Popen(
            [*VMT, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.pid = proc.pid
        out, err = proc.communicate(timeout=600)
        self.pid = None
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def run_ids(self) -> list[str]:
        store = RunStore.for_settings(load_settings(state_dir=self.state))
        try:
            return [r.id for r in store.list_runs()]
        finally:
            store.close()


@contextmanager
def world(tmp_path: Path, state: Path | None = None) -> Iterator[World]:
    data = tmp_path / "data"
    export = generate_dataset(data, images=40, seed=5)
    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Files, directory=str(data / "images")))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    labelbox = FakeLabelbox(tmp_path / "lb").start()
    with local_gcp(training_polls=2, batch_polls=1) as gcp:
        images = FaultProxy(f"http://127.0.0.1:{files.server_address[1]}", record=False)
        lb = FaultProxy(labelbox.base_url, record=False)
        gcs = FaultProxy(gcp.storage_url, record=False)
        vertex = FaultProxy(gcp.vertex.url, record=False)
        proxies = [images, lb, gcs, vertex]
        rows = _rows(export, images.start().url + "/")
        for proxy in proxies[1:]:
            proxy.start()
        classes = {
            o["name"]
            for r in rows
            for label in r["experiments"][MODEL]["runs"][MODEL_RUN]["labels"]
            for o in label["annotations"]["objects"]
        }
        labelbox.add_model_run(MODEL_RUN, rows=rows, classes=classes, model_id=MODEL)
        state = state or tmp_path / "state"
        env = cli_env(
            **{
                **gcp.settings_env(),
                "STORAGE_EMULATOR_HOST": gcs.url,
                "VMT_VERTEX_API_ENDPOINT": vertex.url,
                "VMT_STAGING_CONCURRENCY": "1",
            },
            LABELBOX_API_KEY=labelbox.api_key,
            VMT_LABELBOX_ENDPOINT=lb.url + "/graphql",
            VMT_LABELBOX_POLL_SECONDS="0.01",
            VMT_PREDICTION_CHUNK_SIZE="4",
            VMT_STATE_DIR=str(state),
        )
        w = World(gcp, labelbox, proxies, env, state)
        for proxy in proxies:
            proxy.on_request = w.count
        try:
            yield w
        finally:
            for proxy in proxies:
                proxy.stop()
            labelbox.stop()
            files.shutdown()
            files.server_close()


def _outcome(w: World) -> dict[str, Any]:
    """What the run left in the backends, comparable between runs (ids and names dropped)."""

    def canonical(rows: list[dict[str, Any]]) -> list[str]:
        return sorted(
            json.dumps({k: v for k, v in r.items() if k != "uuid"}, sort_keys=True) for r in rows
        )

    return {
        "predictions": canonical(w.labelbox.predictions(MODEL_RUN)),
        "metrics": canonical(w.labelbox.metrics(MODEL_RUN)),
    }


def _check_once(w: World) -> None:
    vertex = w.gcp.vertex
    assert len(vertex.datasets) == 1, vertex.datasets.keys()
    assert len(vertex.pipelines) == 1, vertex.pipelines.keys()
    assert len(vertex.jobs) == 1, vertex.jobs.keys()
    assert len(w.labelbox.export_tasks) == 1, w.labelbox.export_tasks.keys()
    names = [i.name for i in w.labelbox.imports_for(MODEL_RUN)]
    assert len(names) == len(set(names)), f"an import made twice: {sorted(names)}"
    assert w.labelbox.statuses(MODEL_RUN)[-1]["status"] == "COMPLETE"


def _campaign(tmp_path: Path, points: int, seed: int) -> None:
    start = time.monotonic()
    with world(tmp_path / "reference") as ref:
        done = ref.run("run", "--model-run", MODEL_RUN, "--trainer", "vertex")
        assert done.returncode == 0, done.stderr[-3000:]
        _check_once(ref)
        reference, total = _outcome(ref), len(ref.calls)
    rng = random.Random(seed)
    kill_points = sorted(rng.sample(range(1, total + 1), min(points, total)))
    survived = 0
    where: list[str] = []
    for k in kill_points:
        with world(tmp_path / f"kill-{k}") as w:
            w.kill_at = k
            first = w.run("run", "--model-run", MODEL_RUN, "--trainer", "vertex")
            assert first.returncode == -signal.SIGKILL, (k, first.returncode, first.stderr[-2000:])
            w.kill_at = None
            runs = w.run_ids()
            again = (
                w.run("resume", runs[0])
                if runs
                else w.run("run", "--model-run", MODEL_RUN, "--trainer", "vertex")
            )
            assert again.returncode == 0, (k, w.killed_at, again.stderr[-3000:])
            assert len(w.run_ids()) == 1
            _check_once(w)
            assert _outcome(w) == reference, f"kill at call {k} ({w.killed_at}) changed results"
            survived += 1
            where.append(str(w.killed_at))
    figures.record(
        "1 kills",
        external_calls_per_run=total,
        kill_points=len(kill_points),
        survived=survived,
        distinct_calls_killed_at=len(set(where)),
        lost=0,
        seconds=time.monotonic() - start,
    )


@pytest.mark.faults
def test_kills_sample(tmp_path: Path) -> None:
    _campaign(tmp_path, points=2, seed=1)


@pytest.mark.faults
def test_kills_full(tmp_path: Path) -> None:
    _campaign(tmp_path, points=50, seed=2)
