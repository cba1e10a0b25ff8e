# ruff: noqa: F811 (the fixtures of test_browser.py, imported, are test arguments here)
"""The rows pages in headless Chromium (marker ``browser``, as ``test_browser.py``): the grid
filters and pages, a tile opens its row, a box is drawn where its coordinates say, compare
shows both runs, a class name with markup is text. Screenshots as ``test_browser.py``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.builders.run_store import XSS, finished_run, shapes_run
from tests.integration.dashboard.conftest import TOKEN, Dashboard
from tests.integration.dashboard.test_browser import (  # noqa: F401 (fixtures)
    browser,
    no_script_ran,
    page,
    screenshot_both,
    shots,
)

pytestmark = pytest.mark.browser


def log_in(page: Page, dashboard: Dashboard, path: str) -> None:
    """Sign in through the context's request API (it shares the cookie jar), then open
    ``path``. (Under ``Referrer-Policy: no-referrer``, as on this branch's base, Chromium posts
    the sign-in form with ``Origin: null``; main has since moved to ``same-origin``, after which
    ``test_browser.log_in`` works here too.)"""
    response = page.request.post(
        dashboard.url + "/ui/login", form={"token": TOKEN, "next": path}, max_redirects=0
    )
    assert response.status == 303
    page.goto(dashboard.url + path)
    expect(page).to_have_url(dashboard.url + path)


def test_the_grid_filters_and_pages(page: Page, dashboard: Dashboard, shots: Path) -> None:
    many = finished_run(dashboard.store, seed=5, images=110, drawn=False, run_id="run-e-many")
    log_in(page, dashboard, f"/ui/runs/{dashboard.finished}/rows")
    tiles = page.locator("li.tile")
    expect(tiles.first).to_be_visible()
    page.select_option("#kind", "missed")
    page.click(".filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"kind=missed"))
    count = tiles.count()
    assert count > 0
    for i in range(count):
        expect(tiles.nth(i).locator('[data-kind="missed"]')).to_have_count(1)
    page.select_option("#class", XSS)
    page.click(".filters button[type=submit]")
    expect(page.locator("#class option:checked")).to_have_text(XSS)
    no_script_ran(page)
    page.goto(f"{dashboard.url}/ui/runs/{many}/rows?kind=all")
    expect(page.locator(".pager")).to_contain_text("page 1 of 3")
    first = tiles.first.get_attribute("data-row")
    page.click("a[rel=next]")
    expect(page.locator(".pager")).to_contain_text("page 2 of 3")
    assert tiles.first.get_attribute("data-row") != first


def test_a_tile_opens_its_row_with_boxes_where_the_metrics_put_them(
    page: Page, dashboard: Dashboard, shots: Path
) -> None:
    log_in(page, dashboard, f"/ui/runs/{dashboard.finished}/rows")
    tile = page.locator("li.tile").first
    data_row = tile.get_attribute("data-row")
    tile.locator("a").click()
    expect(page).to_have_url(re.compile(rf"/row\?data_row={data_row}"))
    expect(page.locator("#boxes tbody tr").first).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.row-full svg image')]"
        ".every(i => i.getBBox().width > 0)"
    )
    svg = page.locator(".row-full svg")
    width = float(svg.get_attribute("data-width") or 0)
    frame = svg.bounding_box()
    assert frame is not None and width > 0
    scale = frame["width"] / width
    box = page.locator(".row-full g.box-gt").first
    drawn = box.locator("rect").first.bounding_box()
    assert drawn is not None
    x, y = float(box.get_attribute("data-x") or 0), float(box.get_attribute("data-y") or 0)
    w = float(box.get_attribute("data-w") or 0)
    stroke = 1.6 * max(width, float(svg.get_attribute("data-height") or 0)) / 250 * scale
    assert abs(drawn["x"] + stroke / 2 - (frame["x"] + x * scale)) < 1.5
    assert abs(drawn["y"] + stroke / 2 - (frame["y"] + y * scale)) < 1.5
    assert abs(drawn["width"] - stroke - w * scale) < 1.5
    expect(page.locator("#boxes")).to_contain_text(XSS)
    no_script_ran(page)


def test_compare_shows_the_row_in_both_runs(page: Page, dashboard: Dashboard, shots: Path) -> None:
    log_in(page, dashboard, f"/ui/compare?run={dashboard.baseline}&run={dashboard.finished}")
    page.click("a.rows-link")
    pair = page.locator("section.pair").first
    expect(pair.locator(".side-run")).to_have_count(2)
    expect(pair.locator(".side-run").nth(0)).to_contain_text(dashboard.baseline)
    expect(pair.locator(".side-run").nth(1)).to_contain_text(dashboard.finished)
    no_script_ran(page)


def _images_loaded(page: Page) -> None:
    page.wait_for_function(
        "() => [...document.querySelectorAll('svg image')].every(i => i.getBBox().width > 0)"
    )
    page.wait_for_load_state("networkidle")


def test_screenshots_of_a_run_that_misses_and_invents_shapes(
    page: Page, dashboard: Dashboard, shots: Path
) -> None:
    run = shapes_run(dashboard.store, run_id="run-f-shapes")
    log_in(page, dashboard, f"/ui/runs/{run}/rows")
    expect(page.locator("li.tile svg image").first).to_be_attached()
    _images_loaded(page)
    screenshot_both(page, shots, "rows", full_page=False)
    page.locator("li.tile a").first.click()
    expect(page.locator("#boxes")).to_be_visible()
    _images_loaded(page)
    screenshot_both(page, shots, "row", full_page=False)
    newer = shapes_run(dashboard.store, run_id="run-g-shapes-newer", model_seed=1)
    page.goto(f"{dashboard.url}/ui/compare/rows?run={run}&run={newer}")
    expect(page.locator("section.pair").first.locator(".side-run")).to_have_count(2)
    _images_loaded(page)
    screenshot_both(page, shots, "compare-rows", full_page=False)
