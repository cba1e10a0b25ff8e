"""The run page's rejected rows, page by page over HTTP (a run that left many rows out)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.builders.run_store import XSS, finished_run
from tests.integration.service.live_server import serve_in_thread
from vmt.backends.factory import build_backends
from vmt.config import load_settings
from vmt.domain import Rejection
from vmt.pipeline.runner import Runner

TOKEN = "dashboard-token-0123456789"
REJECTED = 250  # 3 pages of 100


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    from vmt.service.dashboard.local_app import create_ui_app

    settings = load_settings(api_token=TOKEN, state_dir=tmp_path / "state")
    runner = Runner(settings, backends_factory=build_backends)
    rejections = [
        Rejection(
            "not_an_image" if i % 5 else "missing_dimensions",
            i + 1,
            f"row-{i:03d}",
            f"detail {i} {XSS if i == 249 else ''}",
        )
        for i in range(REJECTED)
    ]
    run_id = finished_run(runner.store, seed=1, rejections=rejections, images=8, drawn=False)
    with serve_in_thread(create_ui_app(settings, runner=runner)) as url:
        yield url, run_id
    runner.store.close()


def _ids(html: str) -> list[str]:
    return [part.split("<", 1)[0] for part in html.split('<td class="mono">')[1:]]


def test_rejected_rows_are_listed_page_by_page_and_filtered_by_reason(
    served: tuple[str, str],
) -> None:
    url, run_id = served
    with httpx.Client(base_url=url) as client:
        assert client.post("/ui/login", data={"token": TOKEN, "next": "/ui/"}).status_code == 303
        run_page = client.get(f"/ui/runs/{run_id}").text
        first = client.get(f"/ui/runs/{run_id}/rejected").text
        last = client.get(f"/ui/runs/{run_id}/rejected", params={"page": 3}).text
        past_the_end = client.get(f"/ui/runs/{run_id}/rejected", params={"page": 99}).text
        one_reason = client.get(
            f"/ui/runs/{run_id}/rejected", params={"reason": "missing_dimensions", "page": 1}
        ).text
        unknown = client.get(f"/ui/runs/{run_id}/rejected", params={"reason": "nope"})
        missing = client.get("/ui/runs/no-such-run/rejected")
    assert f"/ui/runs/{run_id}/rejected" in run_page
    assert _ids(first) == [f"row-{i:03d}" for i in range(100)]
    assert "page 1 of 3" in first and 'rel="next" href="?page=2"' in first
    assert _ids(last) == [f"row-{i:03d}" for i in range(200, 250)]
    assert "page 3 of 3" in last and 'rel="next"' not in last
    assert _ids(past_the_end) == _ids(last)
    assert XSS not in last and "&lt;script&gt;" in last
    assert _ids(one_reason) == [f"row-{i:03d}" for i in range(0, 250, 5)]
    assert "page 1 of 1" in one_reason
    assert unknown.status_code == 200 and "No rejected row." in unknown.text
    assert missing.status_code == 404
