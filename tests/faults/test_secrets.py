"""Part 5 of the fault campaign: canary secrets never come out.

``vmt serve`` runs as a user runs it (a subprocess, JSON logs) with canary values for the
Labelbox key, the webhook secret and the API token; the fake Labelbox's rows point at images by
signed URLs whose signature is a canary, through a proxy that answers some fetches with 429, 503
or a reset connection, and some images are missing (403/404). One model run completes, one fails
(every image missing), one does not exist; bad signatures and bad tokens are sent too. Then every
log line, every file of the state directory (run files, reports, the SQLite store and its WAL),
every status and its metadata on the fake Labelbox, every uploaded file and every API answer is
searched for the canaries: zero occurrences.

The raw export (``export.ndjson``, the copy of what Labelbox sent, image URLs included, needed to
fetch the images on a resume) is the one file left out of the search: it is input, not output.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import VMT, cli_env
from tests.fakes.flaky import FaultProxy
from tests.fakes.gcp import free_port
from tests.fakes.labelbox_server import FakeLabelbox
from tests.faults import figures
from tests.faults.canaries import Canaries, files_under, leaks
from vmt.pipeline.artifacts import EXPORT_FILE
from vmt.service.signature import sign
from vmt.synthetic import generate_dataset

MODEL = "model-secrets"
GOOD, BAD, MISSING = "mr-secrets-ok", "mr-secrets-fail", "mr-secrets-missing"


class _Files(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class World:
    canaries: Canaries
    fake: FakeLabelbox
    images: FaultProxy
    url: str
    state: Path
    responses: list[tuple[str, bytes]]

    def deliver(self, model_run_id: str, *, secret: str | None = None) -> httpx.Response:
        body = json.dumps(
            {"modelId": MODEL, "modelRunId": model_run_id, "modelType": "local_object_detection"}
        ).encode()
        key = (secret or self.canaries.webhook_secret).encode()
        answer = httpx.post(
            f"{self.url}/model_run", content=body, headers={"X-Hub-Signature": sign(key, body)}
        )
        self.responses.append((f"POST /model_run {model_run_id}", answer.content))
        return answer

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        auth = {"Authorization": f"Bearer {token or self.canaries.api_token}"}
        answer = httpx.get(self.url + path, headers=auth, timeout=30)
        self.responses.append((f"GET {path}", answer.content))
        return answer

    def wait(self, run_id: str, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            view: dict[str, Any] = self.get(f"/runs/{run_id}").json()
            if view["state"] in ("complete", "failed", "cancelled"):
                return view
            assert time.monotonic() < deadline, view
            time.sleep(0.3)


def _rows(export: Path, canaries: Canaries, base: str) -> list[dict[str, Any]]:
    rows = []
    for i, line in enumerate(export.read_bytes().splitlines()):
        row = orjson.loads(line)
        [(_, experiment)] = row["experiments"].items()
        [(_, run)] = experiment["runs"].items()
        row["experiments"] = {MODEL: {"name": "model", "runs": {GOOD: run}}}
        name = Path(row["data_row"]["row_data"]).name
        if i % 10 == 9:
            name = "missing-" + name  # 404: rejected with its reason
        row["data_row"]["row_data"] = canaries.signed(base + name)
        rows.append(row)
    return rows


def _classes(rows: list[dict[str, Any]]) -> set[str]:
    return {
        obj["name"]
        for row in rows
        for run in next(iter(row["experiments"].values()))["runs"].values()
        for label in run["labels"]
        for obj in label["annotations"]["objects"]
    }


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[World, subprocess.Popen[str]]]:
    canaries = Canaries()
    data = tmp_path / "data"
    export = generate_dataset(data, images=30, seed=11)
    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Files, directory=str(data / "images")))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    images = FaultProxy(
        f"http://127.0.0.1:{files.server_address[1]}", rate=0.2, kinds=("429", "503", "reset"),
        seed=5, record=False,
    ).start()  # fmt: skip
    fake = FakeLabelbox(tmp_path / "fake", api_key=canaries.labelbox_key).start()
    rows = _rows(export, canaries, images.url + "/")
    fake.add_model_run(GOOD, rows=rows, classes=_classes(rows), model_id=MODEL)
    bad_rows = [json.loads(json.dumps(r).replace(GOOD, BAD)) for r in rows]
    for row in bad_rows:
        row["data_row"]["row_data"] = canaries.signed(images.url + "/gone.png")
    fake.add_model_run(BAD, rows=bad_rows, classes=_classes(rows), model_id=MODEL)
    port = free_port()
    state = tmp_path / "state"
    env = cli_env(
        LABELBOX_API_KEY=canaries.labelbox_key,
        VMT_WEBHOOK_SECRET=canaries.webhook_secret,
        VMT_API_TOKEN=canaries.api_token,
        VMT_LABELBOX_ENDPOINT=fake.endpoint,
        VMT_LABELBOX_POLL_SECONDS="0.01",
        VMT_LABELBOX_RETRY_DEADLINE_S="5",
        VMT_STATE_DIR=str(state),
        VMT_LOCAL_EPOCHS="1",
        VMT_LOCAL_DEVICE="cpu",
        VMT_LOG_JSON="true",
    )
    proc = subprocess.Popen(
        [*VMT, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "vmt serve did not come up"
            time.sleep(0.1)
        yield World(canaries, fake, images, url, state, []), proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        fake.stop()
        images.stop()
        files.shutdown()
        files.server_close()


@pytest.mark.faults
def test_no_canary_secret_reaches_any_log_file_status_or_answer(
    world: tuple[World, subprocess.Popen[str]],
) -> None:
    w, proc = world
    good = w.deliver(GOOD)
    assert good.status_code == 202, good.text
    bad = w.deliver(BAD)
    assert bad.status_code == 202, bad.text
    assert w.deliver(MISSING).status_code in (202, 404)
    assert w.deliver(GOOD, secret="wrong-secret").status_code == 401
    assert w.get("/runs", token="wrong-token").status_code == 401
    done = w.wait(good.json()["run_id"])
    failed = w.wait(bad.json()["run_id"])
    assert done["state"] == "complete", done["error"]
    assert failed["state"] == "failed" and failed["error"]
    assert w.deliver(GOOD).status_code == 200  # a redelivery
    for run in w.get("/runs").json()["runs"]:
        w.get(f"/runs/{run['run_id']}")
    assert sum(w.images.faults.values()) > 0, "no image fetch was faulted"

    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    log_lines = stderr.splitlines() + stdout.splitlines()
    assert any('"severity"' in line for line in log_lines)  # JSON lines, as vmt serve logs

    texts: list[tuple[str, bytes]] = [
        (f"log line {n}", line.encode()) for n, line in enumerate(log_lines, 1)
    ]
    texts += [(f"state/{name}", data) for name, data in files_under(w.state, skip={EXPORT_FILE})]
    for mr in (GOOD, BAD):
        texts += [(f"{mr} status", json.dumps(s).encode()) for s in w.fake.statuses(mr)]
        uploaded = w.fake.uploaded_rows(mr)
        texts += [(f"{mr} uploaded row", json.dumps(r).encode()) for r in uploaded]
    texts += [(f"answer {where}", body) for where, body in w.responses]
    assert len(texts) > 50
    found = leaks(w.canaries, texts)
    figures.record(
        "5 secrets: vmt serve",
        texts_searched=len(texts),
        log_lines=len(log_lines),
        state_files=sum(1 for where, _ in texts if where.startswith("state/")),
        image_faults=sum(w.images.faults.values()),
        leaks=len(found),
    )
    assert not found, f"{len(found)} leaks:\n" + "\n".join(found)
    statuses = w.fake.statuses(BAD)
    assert statuses[-1]["status"] == "FAILED"


def test_a_refused_key_fails_the_command_without_showing_it(
    tmp_path: Path, fake_labelbox: FakeLabelbox
) -> None:
    canaries = Canaries()
    fake_labelbox.add_model_run(GOOD, rows=[], classes=["car"], model_id=MODEL)
    state = tmp_path / "state"
    env = cli_env(
        LABELBOX_API_KEY=canaries.labelbox_key,  # not the key the fake accepts
        VMT_WEBHOOK_SECRET=canaries.webhook_secret,
        VMT_API_TOKEN=canaries.api_token,
        VMT_LABELBOX_ENDPOINT=fake_labelbox.endpoint,
        VMT_LABELBOX_RETRY_DEADLINE_S="2",
        VMT_STATE_DIR=str(state),
    )
    texts: list[tuple[str, bytes]] = []
    for args in (["run", "--model-run", GOOD, "--trainer", "local"], ["runs"], ["--debug", "runs"]):
        done = subprocess.run(
            [*VMT, *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        texts += [(f"vmt {' '.join(args)} stderr", done.stderr.encode())]
        texts += [(f"vmt {' '.join(args)} stdout", done.stdout.encode())]
        if args[0] == "run":
            assert done.returncode == 1
            assert "Labelbox" in done.stderr and "key" in done.stderr.lower(), done.stderr
    texts += [(f"state/{name}", data) for name, data in files_under(state)]
    found = leaks(canaries, texts)
    figures.record("5 secrets: refused key", texts_searched=len(texts), leaks=len(found))
    assert not found, "\n".join(found)
