"""The rows pages over HTTP: filters against metrics.json's error breakdown, paging, the row
page's boxes against the run's files, escaping, login, and images only from the run's folders."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import orjson
from PIL import Image

from tests.builders.run_store import XSS, finished_run
from tests.integration.dashboard.conftest import Dashboard
from tests.integration.dashboard.test_pages import ESCAPED, logged_in
from vmt.evaluation.error_breakdown import ERROR_KINDS
from vmt.pipeline import artifacts
from vmt.service.dashboard.row_images import allowed_image
from vmt.service.dashboard.row_pages import ROWS_PER_PAGE

PAIR = re.compile(r'<section class="card pair" data-row="([^"]+)"')
TILE = re.compile(r'<li class="tile" data-row="([^"]+)"')
BOX = re.compile(
    r'data-kind="(gt|dt)" data-status="([a-z]+)" data-x="([^"]+)" data-y="([^"]+)" '
    r'data-w="([^"]+)" data-h="([^"]+)"'
)


def _metrics(dashboard: Dashboard, run_id: str) -> dict:  # type: ignore[type-arg]
    path = dashboard.store.run_dir(run_id) / artifacts.METRICS_FILE
    return orjson.loads(path.read_bytes())  # type: ignore[no-any-return]


def test_rows_pages_need_a_login(dashboard: Dashboard) -> None:
    run = dashboard.finished
    with httpx.Client(base_url=dashboard.url) as client:
        for path in (f"/ui/runs/{run}/rows", f"/ui/runs/{run}/row?data_row=row0001"):
            response = client.get(path, follow_redirects=False)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/ui/login?next=")
        assert client.get(f"/ui/runs/{run}/image?data_row=row0001").status_code == 401


def test_each_filter_shows_the_rows_with_that_error_most_errors_first(
    dashboard: Dashboard,
) -> None:
    metrics = _metrics(dashboard, dashboard.finished)
    per_row = {r["data_row_id"]: r for r in metrics["per_row"]}
    with logged_in(dashboard) as client:
        everything = client.get(f"/ui/runs/{dashboard.finished}/rows?kind=all").text
        assert TILE.findall(everything) == [r["data_row_id"] for r in metrics["per_row"]]
        with_errors = TILE.findall(client.get(f"/ui/runs/{dashboard.finished}/rows").text)
        assert set(with_errors) == {i for i, r in per_row.items() if r["error_score"] > 0}
        scores = [per_row[i]["error_score"] for i in with_errors]
        assert scores == sorted(scores, reverse=True)
        totals = {}
        for kind in ERROR_KINDS:
            page = client.get(f"/ui/runs/{dashboard.finished}/rows?kind={kind}").text
            counts = re.findall(rf'data-kind="{kind}" data-n="(\d+)"', page)
            assert len(counts) == len(TILE.findall(page))
            totals[kind] = sum(map(int, counts))
    assert totals == metrics["error_breakdown"]["counts"]


def test_a_class_filter_keeps_rows_with_an_error_of_that_class(dashboard: Dashboard) -> None:
    metrics = _metrics(dashboard, dashboard.finished)
    per_class = metrics["error_breakdown"]["per_class"]
    with logged_in(dashboard) as client:
        page = client.get(
            f"/ui/runs/{dashboard.finished}/rows", params={"kind": "all", "class": XSS}
        ).text
        tiles = TILE.findall(page)
        assert 0 < len(tiles) <= sum(per_class[XSS].values())
        every = TILE.findall(client.get(f"/ui/runs/{dashboard.finished}/rows?kind=all").text)
        assert len(tiles) < len(every)
        assert ESCAPED in page
        assert XSS not in page
        unknown = client.get(f"/ui/runs/{dashboard.finished}/rows", params={"class": "nope"})
        assert unknown.status_code == 400


def test_a_given_confidence_draws_only_predictions_at_or_above_it(dashboard: Dashboard) -> None:
    with logged_in(dashboard) as client:
        page = client.get(f"/ui/runs/{dashboard.finished}/rows?kind=all&confidence=0.9").text
        assert 'value="0.90"' in page
        scores = re.findall(r"prediction: [^<]*? (\d\.\d\d) ·", page)
        assert scores and all(float(s) >= 0.9 for s in scores)
        for bad in ("2", "-0.1", "x"):
            response = client.get(f"/ui/runs/{dashboard.finished}/rows?confidence={bad}")
            assert response.status_code in (400, 422)
        assert client.get(f"/ui/runs/{dashboard.finished}/rows?kind=bogus").status_code == 400


def test_rows_are_paged(dashboard: Dashboard) -> None:
    run = finished_run(dashboard.store, seed=5, images=110, drawn=False, run_id="run-e-many")
    seen: list[str] = []
    with logged_in(dashboard) as client:
        for page in (1, 2, 3):
            html = client.get(f"/ui/runs/{run}/rows?kind=all&page={page}").text
            assert f"page {page} of 3" in html
            seen += TILE.findall(html)
        last = client.get(f"/ui/runs/{run}/rows?kind=all&page=99").text
        assert "page 3 of 3" in last
        assert client.get(f"/ui/runs/{run}/row?data_row=row0003").status_code == 200
        without = client.get(f"/ui/runs/{run}/image?data_row=row0003")
        assert without.status_code == 404
    assert len(seen) == len(set(seen)) == 110
    assert len(TILE.findall(last)) == 110 - 2 * ROWS_PER_PAGE


def test_the_row_page_lists_every_box_as_the_run_has_it(dashboard: Dashboard) -> None:
    run_dir = dashboard.store.run_dir(dashboard.finished)
    worst = _metrics(dashboard, dashboard.finished)["per_row"][0]["data_row_id"]
    sample = next(
        s for s in artifacts.SampleFile(run_dir / artifacts.SAMPLES_FILE) if s.data_row_id == worst
    )
    predicted = [
        p
        for p in artifacts.read_predictions(run_dir / artifacts.PREDICTIONS_FILE)
        if p.data_row_id == worst
    ]
    detections = [d for p in predicted for d in p.detections]
    with logged_in(dashboard) as client:
        page = client.get(f"/ui/runs/{dashboard.finished}/row", params={"data_row": worst})
        assert page.status_code == 200
        table = page.text.split('id="boxes"', 1)[1]
        assert table.count("<td>ground truth</td>") == len(sample.boxes)
        assert table.count("<td>prediction</td>") == len(detections)
        drawn_gt = [b for b in BOX.findall(page.text) if b[0] == "gt"]
        assert sorted((float(b[2]), float(b[3])) for b in drawn_gt) == sorted(
            (b.x0, b.y0) for b in sample.boxes
        )
        assert ESCAPED in page.text and XSS not in page.text
        image = client.get(
            f"/ui/runs/{dashboard.finished}/image", params={"data_row": worst, "size": "full"}
        )
        missing = client.get(f"/ui/runs/{dashboard.finished}/row?data_row=no-such-row")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(image.content)).size == _fit(sample.width, sample.height, 1280)
    assert missing.status_code == 404


def _fit(width: int | None, height: int | None, side: int) -> tuple[int, int]:
    image = Image.new("RGB", (width or 1, height or 1))
    image.thumbnail((side, side))
    return image.size


def test_an_image_request_names_a_row_never_a_path(dashboard: Dashboard) -> None:
    paths = ("../../../../etc/passwd", "/etc/passwd", "row0001/../../x", "%2e%2e%2fx")
    with logged_in(dashboard) as client:
        for data_row in paths:
            response = client.get(
                f"/ui/runs/{dashboard.finished}/image", params={"data_row": data_row}
            )
            assert response.status_code == 404, data_row


def test_images_are_served_only_from_the_run_s_folders(tmp_path: Path) -> None:
    root = tmp_path / "run"
    (root / "images").mkdir(parents=True)
    inside = root / "images" / "a.png"
    inside.write_bytes(b"x")
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"x")
    link = root / "images" / "link.png"
    link.symlink_to(outside)
    roots = [root.resolve()]
    assert allowed_image(str(inside), roots) == inside.resolve()
    assert allowed_image(f"file://{inside}", roots) == inside.resolve()
    refused = (
        str(outside),
        str(link),
        "images/a.png",
        f"{root}/images/../../secret.png",
        "gs://bucket/a.png",
        "https://example.com/a.png",
        str(root / "images"),
    )
    for uri in refused:
        assert allowed_image(uri, roots) is None, uri


def test_compare_shows_the_rows_whose_errors_changed_in_both_runs(dashboard: Dashboard) -> None:
    before = {
        r["data_row_id"]: r["error_score"]
        for r in _metrics(dashboard, dashboard.baseline)["per_row"]
    }
    after = {
        r["data_row_id"]: r["error_score"]
        for r in _metrics(dashboard, dashboard.finished)["per_row"]
    }
    changed = {i for i in before if i in after and before[i] != after[i]}
    runs = {"run": [dashboard.baseline, dashboard.finished]}
    with logged_in(dashboard) as client:
        compare = client.get("/ui/compare", params=runs).text
        assert "/ui/compare/rows?run=" in compare
        page = client.get("/ui/compare/rows", params=runs).text
        shown = PAIR.findall(page)
        for number in (2, 3):
            shown += PAIR.findall(
                client.get("/ui/compare/rows", params={**runs, "page": number}).text
            )
        fixed = client.get("/ui/compare/rows", params={**runs, "change": "fixed"}).text
        one = client.get("/ui/compare/rows", params={**runs, "data_row": shown[0]}).text
        alone = client.get("/ui/compare/rows", params={"run": dashboard.finished})
    assert set(shown) == changed
    assert page.count('class="side-run"') == 2 * len(PAIR.findall(page))
    fixed_rows = PAIR.findall(fixed)
    assert set(fixed_rows) == {i for i in changed if after[i] < before[i]}
    assert re.findall(r'data-run="([^"]+)"', one) == [dashboard.baseline, dashboard.finished]
    assert ESCAPED in page and XSS not in page
    assert alone.status_code == 400


def test_likely_label_errors_are_ranked_by_the_confident_disagreement(
    dashboard: Dashboard,
) -> None:
    with logged_in(dashboard) as client:
        page = client.get(f"/ui/runs/{dashboard.finished}/rows?kind=suspect").text
        listed = client.get(f"/ui/runs/{dashboard.finished}/label-errors.csv")
    lines = listed.text.strip().split("\n")
    assert lines[0] == "rank,data_row_id,global_key,score,reason"
    scores = [float(line.split(",")[3]) for line in lines[1:]]
    assert scores and scores == sorted(scores, reverse=True) and min(scores) >= 0.7
    assert [line.split(",")[1] for line in lines[1:]] == TILE.findall(page)
    confident = re.findall(r"prediction: [^<]*? (\d\.\d\d) · false positive: (?:false|wrong)", page)
    assert max(map(float, confident)) == max(scores)


def test_a_run_without_an_evaluation_says_so(dashboard: Dashboard) -> None:
    with logged_in(dashboard) as client:
        failed = client.get(f"/ui/runs/{dashboard.failed}/rows")
        unknown = client.get("/ui/runs/no-such-run/rows")
        image = client.get(f"/ui/runs/{dashboard.failed}/image?data_row=row0001")
    assert failed.status_code == 400 and "no evaluation yet" in failed.text
    assert unknown.status_code == 404
    assert image.status_code == 400


def test_the_run_s_own_confidence_is_kept_and_others_snap_to_the_sweep(
    dashboard: Dashboard,
) -> None:
    own = _metrics(dashboard, dashboard.finished)["confidence_threshold"]
    with logged_in(dashboard) as client:
        same = client.get(f"/ui/runs/{dashboard.finished}/rows?confidence={own:.2f}").text
        snapped = client.get(f"/ui/runs/{dashboard.finished}/rows?confidence=0.33").text
    assert f'value="{own:.2f}"' in same
    assert 'value="0.35"' in snapped
    tables = sorted(
        p.name for p in (dashboard.store.run_dir(dashboard.finished) / "rows").glob("*.sqlite")
    )
    assert len(tables) == 2
