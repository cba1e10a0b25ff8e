"""Image URLs carrying credentials (user-info, signed query strings) that fail to fetch, in each
training backend: no credential may reach a log line, an event, an error, a rejection, the
status metadata, the report or any file of the run.

``vmt run`` in a subprocess (local trainer; vertex trainer against the fake Vertex server and the
GCS emulator); the images are served from 127.0.0.1, and the credential-bearing URLs answer 403,
404, 500 (retried, then given up) or point at a closed port.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import VMT, cli_env
from tests.fakes.gcp import local_gcp
from vmt.config import load_settings
from vmt.pipeline.store import RunStore
from vmt.synthetic import generate_dataset

SECRETS = ("hunter2pass", "SIGabc123SECRET", "credXYZ987", "tokQQQ555")


class _Origin(SimpleHTTPRequestHandler):
    """Serves the dataset; ``/deny`` answers 403, ``/flaky`` 500, anything missing 404."""

    def do_GET(self) -> None:
        if self.path.startswith("/deny"):
            self.send_error(403)
        elif self.path.startswith("/flaky"):
            self.send_error(500)
        else:
            super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        return


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data = tmp_path / "data"
    export = generate_dataset(data, images=60, seed=5)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Origin, directory=str(data)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", export
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _export_with_credentials(host: str, export: Path, dest: Path) -> Path:
    bad = [
        f"http://user:{SECRETS[0]}@{host}/deny/a.png",
        f"http://{host}/missing.png?X-Goog-Signature={SECRETS[1]}&X-Goog-Credential={SECRETS[2]}",
        f"http://{host}/flaky/c.png?sig={SECRETS[1]}",
        f"http://{SECRETS[3]}@127.0.0.1:{_closed_port()}/d.png?token={SECRETS[3]}",
    ]
    rows = []
    for i, line in enumerate(export.read_bytes().splitlines()):
        row = orjson.loads(line)
        name = Path(row["data_row"]["row_data"]).name
        row["data_row"]["row_data"] = f"http://{host}/images/{name}"
        if i < len(bad):
            row["data_row"]["row_data"] = bad[i]
            row["media_attributes"] = {}
        rows.append(orjson.dumps(row))
    dest.write_bytes(b"\n".join(rows) + b"\n")
    return dest


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def _every_text_file(*folders: Path) -> Iterator[tuple[Path, str]]:
    for folder in folders:
        for path in folder.rglob("*"):
            if path.name == "export.ndjson":  # the user's own input, copied as it is
                continue
            if path.is_file() and path.suffix not in {".pt", ".png", ".jpg", ".sqlite"}:
                yield path, path.read_bytes().decode("utf-8", "replace")


@pytest.mark.parametrize("trainer", ["local", "vertex"])
def test_failing_urls_with_credentials_leave_no_credential_anywhere(
    trainer: str, origin: tuple[str, Path], tmp_path: Path
) -> None:
    host, export = origin
    remote_export = _export_with_credentials(host, export, tmp_path / "export.ndjson")
    out = tmp_path / "out"
    state = tmp_path / "state"
    with local_gcp() as gcp:
        env = cli_env(
            **gcp.settings_env(),
            VMT_STATE_DIR=str(state),
            VMT_LOCAL_EPOCHS="1",
        )
        run = [*VMT, "run", "--export", str(remote_export), "--out", str(out)]
        done = subprocess.run(
            [*run, "--trainer", trainer, "--train-seconds", "3"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        store = RunStore.for_settings(load_settings(state_dir=state))
        try:
            (record,) = store.list_runs()
            rejections = [
                orjson.loads(x)
                for x in (store.run_dir(record.id) / "rejections.jsonl").read_bytes().splitlines()
            ]
            events = orjson.dumps([(e.message, e.data) for e in store.events(record.id)])
            errors = orjson.dumps([(e.kind, e.message) for e in store.errors(record.id)])
            shown = subprocess.run(
                [*VMT, "runs", "show", record.id, "--rejections", "20", "--events", "500"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            store.close()

    # every bad row was fetched, failed, and was rejected with a reason
    assert {r["line"]: r["reason"] for r in rejections} == {
        1: "image_fetch_failed",
        2: "image_fetch_failed",
        3: "image_fetch_failed",
        4: "image_fetch_failed",
    }
    details = " | ".join(r["detail"] for r in rejections)
    assert "HTTP 403" in details and "HTTP 404" in details and "HTTP 500" in details
    assert "connection failed" in details
    assert f"http://{host}/missing.png" in details  # the location itself is still named
    # ... and no credential anywhere
    assert _leaks(done.stdout + done.stderr) == [], "in the command's output (logs)"
    assert _leaks(shown.stdout + shown.stderr) == [], "in vmt runs show"
    assert _leaks(details) == [], "in rejections"
    assert _leaks(events.decode()) == [], "in events"
    assert _leaks(errors.decode()) == [], "in errors"
    status = (out / "status.ndjson").read_text()
    assert "COMPLETE" in status
    assert _leaks(status) == [], "in the status metadata"
    assert (out / "report.html").is_file()
    for path, text in _every_text_file(out, store.run_dir(record.id)):
        assert _leaks(text) == [], f"in {path}"
