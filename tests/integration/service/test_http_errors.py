"""Errors inside the app become JSON answers with the right status, never an HTML 500 page."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fakes.run_service import FakeRuns
from tests.integration.service.live_server import serve_in_thread
from vmt.config import load_settings
from vmt.errors import BackendError, ConfigError, InputError, RunConflictError

TOKEN = "t0ken-unit"


class BrokenRuns(FakeRuns):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def list_runs(self, *, limit: int) -> list[dict[str, object]]:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (InputError("bad limit"), 400, "invalid_input"),
        (RunConflictError("busy"), 409, "conflict"),
        (BackendError("store down", retryable=True), 503, "backend_error"),
        (BackendError("store broken"), 502, "backend_error"),
        (ConfigError("missing setting(s): VMT_X"), 500, "configuration"),
        (RuntimeError("internal detail /secret/path"), 500, "internal_error"),
    ],
)
def test_errors_map_to_json(tmp_path: Path, error: Exception, status: int, code: str) -> None:
    from vmt.service.app import create_app

    settings = load_settings(webhook_secret="s3cret", api_token=TOKEN, state_dir=tmp_path)
    app = create_app(settings, runner=BrokenRuns(error), model_types=[], run_worker=False)
    with serve_in_thread(app) as url:
        response = httpx.get(f"{url}/runs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == code
    if code == "internal_error":
        assert "secret" not in body["detail"]  # internals stay in the log


def test_refuses_to_build_without_secret_unless_insecure(tmp_path: Path) -> None:
    from vmt.service.app import create_app

    settings = load_settings(state_dir=tmp_path)
    with pytest.raises(ConfigError, match="VMT_WEBHOOK_SECRET"):
        create_app(settings, runner=FakeRuns(), model_types=[])
    app = create_app(
        settings,
        runner=FakeRuns(),
        model_types=["local_object_detection"],
        insecure=True,
        run_worker=False,
    )
    with serve_in_thread(app) as url:
        assert httpx.get(f"{url}/models").json() == {"local_object_detection": {}}
        assert httpx.get(f"{url}/runs").status_code == 200  # no token configured: open, warned
