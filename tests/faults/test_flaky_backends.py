"""Part 2 of the fault campaign: flaky backends.

``vmt run --model-run MR --trainer vertex`` (a subprocess, as a user runs it) against the fake
Labelbox, the fake Vertex, the GCS emulator and an image server, each behind a seeded
``FaultProxy`` (tests/fakes/flaky.py) that answers 20% of calls with a 429, a 503, a reset
connection or (Vertex) an answer slower than the client's timeout after acting on the request.
The run completes, creates every external resource once, and the faults are counted. Then a
backend that stays down: the run ends FAILED, with a message naming it, within the bound the
README states.
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
from tests.fakes.flaky import FaultProxy
from tests.fakes.gcp import LocalGcp, local_gcp
from tests.fakes.labelbox_server import FakeLabelbox
from tests.faults import figures
from vmt.config import load_settings
from vmt.pipeline.store import RunStore
from vmt.synthetic import generate_dataset

MODEL, MODEL_RUN = "model-flaky", "mr-flaky"


class _Files(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class Flaky:
    gcp: LocalGcp
    labelbox: FakeLabelbox
    proxies: dict[str, FaultProxy]
    env: dict[str, str]
    state: Path


def _rows(export: Path, base: str) -> list[dict[str, Any]]:
    rows = []
    for line in export.read_bytes().splitlines():
        row = orjson.loads(line)
        [(_, experiment)] = row["experiments"].items()
        [(_, run)] = experiment["runs"].items()
        row["experiments"] = {MODEL: {"name": "model", "runs": {MODEL_RUN: run}}}
        row["data_row"]["row_data"] = base + Path(row["data_row"]["row_data"]).name
        rows.append(row)
    return rows


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[Flaky]:
    data = tmp_path / "data"
    export = generate_dataset(data, images=40, seed=5)
    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Files, directory=str(data / "images")))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    labelbox = FakeLabelbox(tmp_path / "lb").start()
    quick = ("429", "503", "reset")
    with local_gcp() as gcp:
        proxies = {
            "images": FaultProxy(f"http://127.0.0.1:{files.server_address[1]}", rate=0.2,
                                 kinds=quick, seed=1, record=False),
            "labelbox": FaultProxy(labelbox.base_url, rate=0.2, kinds=quick, seed=2,
                                   style="labelbox", record=False),
            "gcs": FaultProxy(gcp.storage_url, rate=0.2, kinds=quick, seed=3, record=False),
            "vertex": FaultProxy(gcp.vertex.url, rate=0.2, seed=4, slow_seconds=2.5),
        }  # fmt: skip
        for proxy in proxies.values():
            proxy.start()
        rows = _rows(export, proxies["images"].url + "/")
        classes = {
            o["name"]
            for r in rows
            for lb in r["experiments"][MODEL]["runs"][MODEL_RUN]["labels"]
            for o in lb["annotations"]["objects"]
        }
        labelbox.add_model_run(MODEL_RUN, rows=rows, classes=classes, model_id=MODEL)
        state = tmp_path / "state"
        env = cli_env(
            **{
                **gcp.settings_env(),
                "STORAGE_EMULATOR_HOST": proxies["gcs"].url,
                "VMT_VERTEX_API_ENDPOINT": proxies["vertex"].url,
            },
            VMT_VERTEX_CALL_TIMEOUT_S="1",
            LABELBOX_API_KEY=labelbox.api_key,
            VMT_LABELBOX_ENDPOINT=proxies["labelbox"].url + "/graphql",
            VMT_LABELBOX_POLL_SECONDS="0.01",
            VMT_STATE_DIR=str(state),
        )
        try:
            yield Flaky(gcp, labelbox, proxies, env, state)
        finally:
            for proxy in proxies.values():
                proxy.stop()
            labelbox.stop()
            files.shutdown()
            files.server_close()


def _run(
    env: dict[str, str], timeout: float = 900
) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    done = subprocess.run(
        [*VMT, "run", "--model-run", MODEL_RUN, "--trainer", "vertex"],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    return done, time.monotonic() - start


def _transient_errors(state: Path) -> int:
    store = RunStore.for_settings(load_settings(state_dir=state))
    try:
        return sum(1 for run in store.list_runs() for e in store.errors(run.id) if e.retryable)
    finally:
        store.close()


@pytest.mark.faults
def test_a_run_completes_through_backends_that_fail_one_call_in_five(flaky: Flaky) -> None:
    done, seconds = _run(flaky.env)
    assert done.returncode == 0, done.stderr[-4000:]
    vertex = flaky.gcp.vertex
    assert len(vertex.datasets) == 1
    assert len(vertex.pipelines) == 1
    assert len(vertex.jobs) == 1
    imports = flaky.labelbox.imports_for(MODEL_RUN)
    assert len({i.name for i in imports}) == len(imports), "an import was created twice"
    assert flaky.labelbox.statuses(MODEL_RUN)[-1]["status"] == "COMPLETE"
    assert flaky.labelbox.predictions(MODEL_RUN)
    faults = {name: dict(p.faults) for name, p in flaky.proxies.items()}
    assert all(sum(f.values()) > 0 for f in faults.values()), faults
    figures.record(
        "2 flaky backends",
        faults=faults,
        calls_forwarded={name: p.forwarded for name, p in flaky.proxies.items()},
        transient_errors_recorded=_transient_errors(flaky.state),
        lost=0,
        seconds=seconds,
    )


@pytest.mark.faults
@pytest.mark.parametrize("backend", ["vertex", "labelbox", "gcs"])
def test_a_backend_that_stays_down_fails_the_run_within_the_bound(
    flaky: Flaky, backend: str
) -> None:
    for proxy in flaky.proxies.values():
        proxy.rate = 0.0
    flaky.proxies[backend].down = True
    env = {
        **flaky.env,
        "VMT_VERTEX_RETRY_DEADLINE_S": "15",
        "VMT_LABELBOX_RETRY_DEADLINE_S": "15",
        "VMT_STAGE_RETRY_DEADLINE_S": "15",
    }
    done, seconds = _run(env)
    assert done.returncode == 1, done.stderr[-3000:]
    message = " ".join(done.stderr.split())
    figures.record(f"2 backend down: {backend}", seconds=seconds, message=message[-300:])
    # The README's bound: stage_retry_deadline_s + the backend's per-call deadline (+ 120 s of
    # the Labelbox SDK's own 5xx retries per call), then the FAILED status (to a down Labelbox:
    # one more call), plus starting the process.
    sdk = 120 if backend == "labelbox" else 0
    bound = 15 + (15 + sdk) + (15 + sdk if backend == "labelbox" else 0) + 30
    figures.record(f"2 backend down: {backend} (bound)", bound_s=bound)
    assert seconds < bound, f"{seconds:.0f}s: {message[-500:]}"
    named = {"vertex": "vertex", "labelbox": "labelbox", "gcs": "cloud storage"}[backend]
    assert named in message.lower(), message
