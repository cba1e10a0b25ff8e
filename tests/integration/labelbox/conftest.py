"""The fake Labelbox server, settings pointing at it, and a small file-backed RunContext."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.labelbox_server import API_KEY, FakeLabelbox
from vmt.config import Settings, load_settings
from vmt.errors import RunCancelled
from vmt.retry import Backoff


class FileRunContext:
    """A stand-in for the pipeline's RunContext: handles survive in ``handles.json`` so a second
    instance on the same folder (a restarted process) sees them."""

    def __init__(self, run_id: str, workdir: Path) -> None:
        self._run_id = run_id
        self._workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.events: list[tuple[str, dict[str, object]]] = []
        self.progress_calls: list[tuple[int, int | None, str]] = []
        self.cancelled = False

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def workdir(self) -> Path:
        return self._workdir

    @property
    def _handles_path(self) -> Path:
        return self._workdir / "handles.json"

    def _handles(self) -> dict[str, str]:
        if not self._handles_path.exists():
            return {}
        loaded: dict[str, str] = json.loads(self._handles_path.read_text())
        return loaded

    def get_handle(self, key: str) -> str | None:
        return self._handles().get(key)

    def set_handle(self, key: str, value: str) -> None:
        handles = self._handles()
        handles[key] = value
        tmp = self._handles_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(handles))
        tmp.replace(self._handles_path)

    def event(self, message: str, **data: object) -> None:
        self.events.append((message, data))

    def progress(self, done: int, total: int | None = None, *, what: str = "") -> None:
        self.progress_calls.append((done, total, what))

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise RunCancelled("cancelled", run_id=self._run_id)

    def messages(self) -> list[str]:
        return [message for message, _ in self.events]


FAST_BACKOFF = Backoff(base=0.01, cap=0.05, deadline=20.0)


def settings_for(fake: FakeLabelbox, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "labelbox_api_key": API_KEY,
        "labelbox_endpoint": fake.endpoint,
        "labelbox_poll_seconds": 0.01,
        "labelbox_retry_deadline_s": 20.0,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def ctx(tmp_path: Path) -> FileRunContext:
    return FileRunContext("run-1", tmp_path / "run")
