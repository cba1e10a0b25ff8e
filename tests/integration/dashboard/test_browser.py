"""The dashboard in a real browser: headless Chromium (Debian's ``chromium`` package) driven by
Playwright. ``make test-browser`` installs Chromium and runs these (marker ``browser``).

Screenshots of each page at desktop (1280) and phone (390) width go to ``$DASHBOARD_SCREENSHOTS``
(``make screenshots`` points it at docs/screenshots), else to the test's tmp folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.builders.run_store import running_run
from tests.integration.dashboard.conftest import TOKEN, Dashboard
from vmt.pipeline.store import RunState

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.dismiss())
    yield page
    context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def log_in(page: Page, dashboard: Dashboard, path: str = "/ui/") -> None:
    page.goto(dashboard.url + path)
    expect(page).to_have_url(f"{dashboard.url}/ui/login?next={path.replace('/', '%2F')}")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(dashboard.url + path)


def screenshot_both(page: Page, shots: Path, name: str, *, full_page: bool = True) -> None:
    for width_name, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(100)
        page.screenshot(path=str(shots / f"{name}-{width_name}.png"), full_page=full_page)
    page.set_viewport_size({"width": 1280, "height": 900})


def no_script_ran(page: Page) -> None:
    assert page.evaluate("() => window.__xss === undefined"), "a <script> from user data ran"


def test_login_then_runs_page(page: Page, dashboard: Dashboard, shots: Path) -> None:
    page.goto(dashboard.url + "/ui/")
    expect(page.locator("h1")).to_have_text("Sign in")
    screenshot_both(page, shots, "login")
    page.fill("#token", "wrong")
    page.click("button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("not right")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    rows = page.locator("table.runs tbody tr")
    expect(rows).to_have_count(4)
    failed = page.locator(f'tr[data-run="{dashboard.failed}"]')
    expect(failed.locator(".badge")).to_have_text("failed")
    expect(failed).to_contain_text("<script>window.__xss=1</script>")
    no_script_ran(page)
    cookies = page.context.cookies()
    session = next(c for c in cookies if c["name"] == "vmt_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert TOKEN not in page.content()
    screenshot_both(page, shots, "runs")
    page.click("text=failed >> nth=0")
    expect(page).to_have_url(f"{dashboard.url}/ui/?state=failed")
    expect(rows).to_have_count(1)


def test_finished_run_page_and_report(page: Page, dashboard: Dashboard, shots: Path) -> None:
    log_in(page, dashboard, f"/ui/runs/{dashboard.finished}")
    expect(page.locator("#stages li.stage-done")).to_have_count(6)
    expect(page.locator("details summary").first).to_contain_text("image_missing")
    expect(page.locator("body")).to_contain_text("box past the edge <script>")
    no_script_ran(page)
    screenshot_both(page, shots, "run-finished")
    page.click("#report-link")
    expect(page.locator("h2", has_text="Curves")).to_be_visible()
    no_script_ran(page)
    screenshot_both(page, shots, "report", full_page=False)


def test_failed_run_shows_its_error_as_text(page: Page, dashboard: Dashboard, shots: Path) -> None:
    log_in(page, dashboard, f"/ui/runs/{dashboard.failed}")
    expect(page.locator("#run-error")).to_contain_text("<script>window.__xss=1</script>")
    expect(page.locator('li[data-stage="prepare"] .badge')).to_have_text("failed")
    no_script_ran(page)
    screenshot_both(page, shots, "run-failed")


def test_running_run_progress_moves(page: Page, dashboard: Dashboard, shots: Path) -> None:
    with running_run(dashboard.store, total=1000, step=5) as run_id:
        log_in(page, dashboard, f"/ui/runs/{run_id}")
        progress = page.locator('li[data-stage="train"] .progress')
        expect(progress).to_be_visible()
        page.wait_for_function(
            "() => Number(document.querySelector('li[data-stage=\"train\"] .progress')"
            "?.getAttribute('data-done') || 0) > 0"
        )
        first = int(progress.get_attribute("data-done") or 0)
        page.wait_for_function(
            f"() => Number(document.querySelector('li[data-stage=\"train\"] .progress')"
            f"?.getAttribute('data-done') || 0) > {first}"
        )
        screenshot_both(page, shots, "run-running")
        page.click("#cancel")
        expect(page.locator(".notice")).to_contain_text("Cancel")
        page.wait_for_function(
            "() => document.querySelector('#run-state .badge')?.textContent === 'cancelled'",
            timeout=10_000,
        )
    assert dashboard.store.get_run(run_id).state is RunState.CANCELLED


def test_cancel_a_pending_run(page: Page, dashboard: Dashboard) -> None:
    log_in(page, dashboard, f"/ui/runs/{dashboard.pending}")
    page.click("#cancel")
    expect(page.locator(".notice")).to_have_text("Run cancelled.")
    expect(page.locator("#run-state .badge")).to_have_text("cancelled")
    assert dashboard.store.get_run(dashboard.pending).state is RunState.CANCELLED


def test_compare_two_runs(page: Page, dashboard: Dashboard, shots: Path) -> None:
    log_in(page, dashboard)
    page.check(f'input[value="{dashboard.baseline}"]')
    page.check(f'input[value="{dashboard.finished}"]')
    page.click("#compare-button")
    expect(page.locator("h1")).to_have_text("Compare 2 runs")
    expect(
        page.locator("table.compare").first.locator("td.trend-better, td.trend-worse").first
    ).to_be_visible()
    expect(page.locator("svg")).not_to_have_count(0)
    expect(page.locator("table.compare >> nth=1")).to_contain_text(
        "<script>window.__xss=1</script>"
    )
    no_script_ran(page)
    screenshot_both(page, shots, "compare")
