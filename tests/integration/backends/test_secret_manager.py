"""The Labelbox API key read from Secret Manager (a local fake of its REST API) by a pipeline
step whose environment has no key: the step works, and the key appears in no request body,
parameter or log line of ours."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.builders.labelbox_rows import model_run_row
from tests.fakes.labelbox_server import API_KEY, FakeLabelbox
from vmt.backends.secret_manager import access_secret, with_secrets
from vmt.config import load_settings
from vmt.errors import AuthError, NotFoundError
from vmt.orchestrators.steps import run_step, step_settings_json
from vmt.pipeline.run_config import labelbox_run_config

SECRET = "projects/p/secrets/labelbox-api-key/versions/latest"


@pytest.fixture
def secret_manager() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == f"/v1/{SECRET}:access":
                status, body = 200, {"name": SECRET, "payload": {"data": base64.b64encode(
                    API_KEY.encode()).decode()}}  # fmt: skip
            elif "forbidden" in self.path:
                status, body = 403, {"error": {"code": 403, "status": "PERMISSION_DENIED"}}
            else:
                status, body = 404, {"error": {"code": 404, "status": "NOT_FOUND"}}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_access_secret_and_its_errors(secret_manager: str) -> None:
    settings = load_settings(secret_manager_endpoint=secret_manager, gcp_anonymous_credentials=True)
    assert access_secret(SECRET, settings).get_secret_value() == API_KEY
    with pytest.raises(NotFoundError):
        access_secret("projects/p/secrets/missing/versions/1", settings)
    with pytest.raises(AuthError):
        access_secret("projects/p/secrets/forbidden/versions/1", settings)
    unchanged = load_settings(labelbox_api_key="from-env", labelbox_api_key_secret=SECRET)
    assert with_secrets(unchanged) is unchanged


def test_step_reads_the_key_from_secret_manager(
    secret_manager: str,
    fake_labelbox: FakeLabelbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_labelbox.add_model_run(
        "mr-secret", rows=[model_run_row("dr-1", run_id="mr-secret")], classes=["car"]
    )
    monkeypatch.setenv("VMT_LABELBOX_POLL_SECONDS", "0.01")
    settings = load_settings(
        labelbox_endpoint=fake_labelbox.endpoint,
        labelbox_api_key_secret=SECRET,
        secret_manager_endpoint=secret_manager,
        gcp_anonymous_credentials=True,
    )
    params = {
        "run_id": "vmt-mr-secret",
        "run_config": labelbox_run_config(model_run_id="mr-secret", trainer="local").to_json(),
        "settings": step_settings_json(settings),
        "run_dir": str(tmp_path / "run"),
    }
    assert API_KEY not in json.dumps(params)
    with caplog.at_level(logging.DEBUG, logger="vmt"):
        outputs = run_step("export", **params)
    assert outputs["export_bytes"] > 0
    assert [s["status"] for s in fake_labelbox.statuses("mr-secret")] == ["EXPORTING_DATA"]
    assert API_KEY not in caplog.text
    assert API_KEY not in (tmp_path / "run" / "events.jsonl").read_text()
