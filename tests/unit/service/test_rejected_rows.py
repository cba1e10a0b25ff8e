"""A page of a run's rejected rows, read from rejections.jsonl."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmt.domain import Rejection
from vmt.pipeline import artifacts
from vmt.service.dashboard.rejected_rows import rejected_rows_page


@pytest.fixture
def rejections(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    path = tmp_path / artifacts.REJECTIONS_FILE
    by_reason: dict[str, int] = {}
    with artifacts.rejection_writer(path) as out:
        for i in range(25):
            reason = "no_boxes" if i % 3 == 0 else "not_an_image"
            # a detail that quotes another reason's code must not count as that reason
            out.write(Rejection(reason, i + 1, f"r{i}", 'saw "reason":"no_boxes" in a file'))
            by_reason[reason] = by_reason.get(reason, 0) + 1
    return path, by_reason


@pytest.mark.parametrize(
    ("reason", "page", "lines", "pages", "total"),
    [
        (None, 1, list(range(1, 11)), 3, 25),
        (None, 3, list(range(21, 26)), 3, 25),
        (None, 9, list(range(21, 26)), 3, 25),  # past the end: the last page
        (None, 0, list(range(1, 11)), 3, 25),
        ("no_boxes", 1, [1, 4, 7, 10, 13, 16, 19, 22, 25], 1, 9),
        ("not_an_image", 2, [17, 18, 20, 21, 23, 24], 2, 16),
        ("unknown", 1, [], 1, 0),
    ],
)
def test_pages_of_rejected_rows(
    rejections: tuple[Path, dict[str, int]],
    reason: str | None,
    page: int,
    lines: list[int],
    pages: int,
    total: int,
) -> None:
    path, by_reason = rejections
    view = rejected_rows_page(path, by_reason, reason=reason, page=page, size=10)
    assert [r.line for r in view.rows] == lines
    assert (view.pages, view.total) == (pages, total)
    assert all(r.reason == reason for r in view.rows) or reason is None
    assert list(view.reasons) == ["not_an_image", "no_boxes"]


def test_a_run_without_a_rejections_file_has_an_empty_page(tmp_path: Path) -> None:
    view = rejected_rows_page(tmp_path / "none.jsonl", {}, reason=None, page=1)
    assert (view.rows, view.pages, view.total) == ([], 1, 0)
