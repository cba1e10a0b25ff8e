from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.run_service import FakeRuns
from tests.integration.service.live_server import serve_in_thread
from vmt.config import load_settings

SECRET = "whsec-test-0123456789"
TOKEN = "api-token-test-abcdef"
MODEL_TYPES = ("local_object_detection", "vertex_automl_object_detection")


@dataclass
class Service:
    url: str
    runs: FakeRuns
    state_dir: Path


@pytest.fixture
def fake_runs() -> FakeRuns:
    return FakeRuns()


@pytest.fixture
def service(fake_runs: FakeRuns, tmp_path: Path) -> Iterator[Service]:
    """The real app (real delivery store, real worker) over a fake RunService, live."""
    from vmt.service.app import create_app

    settings = load_settings(webhook_secret=SECRET, api_token=TOKEN, state_dir=tmp_path / "state")
    app = create_app(settings, runner=fake_runs, model_types=MODEL_TYPES)
    with serve_in_thread(app) as url:
        yield Service(url=url, runs=fake_runs, state_dir=settings.state_dir)
