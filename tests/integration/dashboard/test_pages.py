"""The dashboard over HTTP: login and session cookie, CSRF, escaping, paging, compare."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.builders.run_store import XSS, running_run
from tests.integration.dashboard.conftest import FAILURE, TOKEN, Dashboard
from vmt.pipeline.store import RunState

ESCAPED = "&lt;script&gt;window.__xss=1&lt;/script&gt;"


@contextmanager
def logged_in(dashboard: Dashboard) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dashboard.url, follow_redirects=False) as client:
        response = client.post("/ui/login", data={"token": TOKEN, "next": "/ui/"})
        assert response.status_code == 303, response.text
        yield client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def test_pages_need_a_login(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.url) as client:
        for path in ("/ui/", f"/ui/runs/{dashboard.finished}", "/ui/compare?run=a&run=b"):
            response = client.get(path, follow_redirects=False)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/ui/login?next=")
        assert client.get(f"/ui/runs/{dashboard.finished}/live").status_code == 401
        assert client.get(f"/ui/runs/{dashboard.finished}/report").status_code == 303


def test_login_sets_an_httponly_samesite_cookie_without_the_token(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.url) as client:
        wrong = client.post("/ui/login", data={"token": "nope", "next": "/ui/"})
        assert wrong.status_code == 401
        assert "not right" in wrong.text
        assert "set-cookie" not in wrong.headers
        right = client.post(
            "/ui/login", data={"token": TOKEN, "next": "/ui/"}, follow_redirects=False
        )
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert TOKEN not in cookie
    assert right.headers["location"] == "/ui/"


def test_login_never_redirects_off_the_dashboard(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.url) as client:
        response = client.post("/ui/login", data={"token": TOKEN, "next": "https://evil.example/"})
    assert response.headers["location"] == "/ui/"


def test_runs_page_lists_runs_with_headline_and_escapes_errors(dashboard: Dashboard) -> None:
    with logged_in(dashboard) as client:
        html = client.get("/ui/").text
    for run_id in (dashboard.finished, dashboard.baseline, dashboard.failed, dashboard.pending):
        assert f'data-run="{run_id}"' in html
    assert ESCAPED in html
    assert XSS not in html
    assert TOKEN not in html
    row = html[html.index(f'data-run="{dashboard.finished}"') :]
    row = row[: row.index("</tr>")]
    assert "state-complete" in row
    assert re.search(r'<td class="num">0\.\d{1,4}</td>', row), "AP50 rounded to 4 digits"


def test_runs_page_filters_by_state(dashboard: Dashboard) -> None:
    with logged_in(dashboard) as client:
        html = client.get("/ui/?state=failed").text
        assert f'data-run="{dashboard.failed}"' in html
        assert f'data-run="{dashboard.finished}"' not in html
        assert client.get("/ui/?state=bogus").status_code == 400


def test_runs_page_pages_through_many_runs(dashboard: Dashboard) -> None:
    config = dashboard.store.get_run(dashboard.pending).config
    made = [dashboard.store.create_run(config, run_id=f"bulk-{i:03d}") for i in range(120)]
    with logged_in(dashboard) as client:
        first = client.get("/ui/").text
        third = client.get("/ui/?page=3").text
    assert "page 1 of 3" in first
    assert first.count('data-run="') == 50
    assert "page 3 of 3" in third
    assert third.count('data-run="') == 124 - 100
    assert set(re.findall(r'data-run="([^"]+)"', first)).isdisjoint(
        re.findall(r'data-run="([^"]+)"', third)
    )
    assert made


def test_run_page_shows_stages_rejections_metrics_and_report(dashboard: Dashboard) -> None:
    with logged_in(dashboard) as client:
        html = client.get(f"/ui/runs/{dashboard.finished}").text
        report = client.get(f"/ui/runs/{dashboard.finished}/report")
    for stage in ("export", "prepare", "train", "predict", "evaluate", "publish"):
        assert f'data-stage="{stage}"' in html
    assert "image_missing" in html and "2 rows" in html
    assert "no such file: a.jpg" in html and "row-4" in html
    assert ESCAPED in html and XSS not in html
    assert "validation + test" in html
    assert f"/ui/runs/{dashboard.finished}/report" in html
    assert report.status_code == 200
    assert "default-src 'none'" in report.headers["content-security-policy"]
    assert "Precision-recall" in report.text
    assert XSS not in report.text


def test_failed_run_page_shows_the_error_as_text(dashboard: Dashboard) -> None:
    with logged_in(dashboard) as client:
        html = client.get(f"/ui/runs/{dashboard.failed}").text
    assert FAILURE.replace(XSS, ESCAPED) in html
    assert XSS not in html
    assert 'id="resume"' in html


def test_cancel_needs_the_csrf_token_and_the_same_origin(dashboard: Dashboard) -> None:
    with logged_in(dashboard) as client:
        page = client.get(f"/ui/runs/{dashboard.pending}").text
        token = csrf_of(page)
        url = f"/ui/runs/{dashboard.pending}/cancel"
        assert client.post(url, data={}).status_code == 403
        assert client.post(url, data={"csrf": "0" * 64}).status_code == 403
        foreign = client.post(url, data={"csrf": token}, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        assert dashboard.store.get_run(dashboard.pending).state is RunState.PENDING
        done = client.post(url, data={"csrf": token}, headers={"Origin": dashboard.url})
        assert done.status_code == 303
        assert dashboard.store.get_run(dashboard.pending).state is RunState.CANCELLED
        assert "Run cancelled." in client.get(done.headers["location"]).text


def test_cancel_without_a_session_is_refused(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.url) as client:
        response = client.post(f"/ui/runs/{dashboard.pending}/cancel", data={"csrf": "x"})
    assert response.status_code == 401
    assert dashboard.store.get_run(dashboard.pending).state is RunState.PENDING


def test_live_status_moves_while_a_run_trains(dashboard: Dashboard) -> None:
    import time

    with logged_in(dashboard) as client, running_run(dashboard.store) as run_id:
        seen = []
        for _ in range(4):
            status = client.get(f"/ui/runs/{run_id}/live").json()
            train = next(s for s in status["stages"] if s["stage"] == "train")
            seen.append(train["done"] or 0)
            time.sleep(0.3)
        assert status["state"] == "running"
        assert seen == sorted(seen) and seen[-1] > seen[0]


def test_compare_shows_headline_per_class_curves_and_matrices(dashboard: Dashboard) -> None:
    with logged_in(dashboard) as client:
        html = client.get(f"/ui/compare?run={dashboard.baseline}&run={dashboard.finished}").text
        one = client.get(f"/ui/compare?run={dashboard.baseline}")
    assert "Compare 2 runs" in html
    assert "AP50 per class" in html
    assert re.search(r"trend-(better|worse)", html)
    assert html.count("precision-recall") >= 2
    assert html.count("confusion matrix") == 2
    assert ESCAPED in html and XSS not in html
    assert one.status_code == 400


@pytest.mark.parametrize("path", ["/ui/runs/nope", "/ui/compare?run=nope&run=other"])
def test_unknown_runs_answer_404(dashboard: Dashboard, path: str) -> None:
    with logged_in(dashboard) as client:
        assert client.get(path).status_code == 404


def test_resume_advances_the_run_in_the_background(dashboard: Dashboard) -> None:
    import time

    with logged_in(dashboard) as client:
        token = csrf_of(client.get(f"/ui/runs/{dashboard.pending}").text)
        done = client.post(f"/ui/runs/{dashboard.pending}/resume", data={"csrf": token})
        assert done.status_code == 303
        assert done.headers["location"].endswith("?done=resumed")
        deadline = time.monotonic() + 30
        while dashboard.store.get_run(dashboard.pending).state is RunState.PENDING:
            assert time.monotonic() < deadline, "the resumed run did not move"
            time.sleep(0.1)
        while dashboard.store.get_run(dashboard.pending).is_active():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        run = dashboard.store.get_run(dashboard.pending)
        assert run.state is RunState.FAILED  # its export file does not exist
        assert "none.ndjson" in (run.error or "")
        again = client.post(f"/ui/runs/{dashboard.finished}/resume", data={"csrf": token})
        assert again.status_code == 409
        assert "nothing to resume" in again.text
