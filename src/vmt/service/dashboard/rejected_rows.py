"""A page of a run's rejected rows (``rejections.jsonl`` from the prepare stage), optionally of
one reason, for the run page's "rejected rows" list. No HTTP here.

A 1M-row run can leave 100k rows out; a page never parses more than its own rows: the lines
before it are skipped as bytes (with one reason, a line is decoded only when its bytes hold that
reason's code), so page 2,000 of 100k rejections costs one pass over the file's bytes and the
memory of one page. The totals come from the prepare stage's counts, not from a scan.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from vmt.domain import Rejection
from vmt.formats.sample_json import rejection_from_json
from vmt.pipeline import artifacts
from vmt.pipeline.protocols import Stage
from vmt.pipeline.store import RunStore

REJECTED_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class RejectedPage:
    """Rows ``(page - 1) * size`` to ``page * size`` of the rejections (of ``reason``)."""

    rows: list[Rejection]
    reason: str | None
    page: int
    pages: int
    total: int
    reasons: dict[str, int]
    """Every reason with its count, most frequent first (the filter's choices)."""


def rejected_rows_page(
    path: Path,
    by_reason: Mapping[str, int],
    *,
    reason: str | None,
    page: int,
    size: int = REJECTED_PAGE_SIZE,
) -> RejectedPage:
    """Page ``page`` (1-based, clamped to the pages there are) of the rejections in ``path``
    (``rejections.jsonl``), only those of ``reason`` when given; ``by_reason`` is the prepare
    stage's count per reason. An unknown reason gives an empty page."""
    reasons = dict(sorted(by_reason.items(), key=lambda item: (-item[1], item[0])))
    total = reasons.get(reason, 0) if reason else sum(reasons.values())
    pages = max(1, -(-total // size))
    page = max(1, min(page, pages))
    rows: list[Rejection] = []
    if total and path.exists():
        with path.open("rb") as lines:
            chosen = _of_reason(lines, reason) if reason else (ln for ln in lines if ln.strip())
            start = (page - 1) * size
            rows = [
                rejection_from_json(line) for line in itertools.islice(chosen, start, start + size)
            ]
    return RejectedPage(rows, reason, page, pages, total, reasons)


def _of_reason(lines: Iterator[bytes], reason: str) -> Iterator[bytes]:
    needle = b'"reason":' + orjson.dumps(reason)
    for line in lines:
        if needle in line and orjson.loads(line).get("reason") == reason:
            yield line


def run_rejected_rows(
    store: RunStore, run_id: str, *, reason: str | None, page: int
) -> RejectedPage:
    """The page of ``run_id``'s rejected rows. Raises ``UnknownRunError`` for an unknown id."""
    store.get_run(run_id)
    by_reason = store.stage(run_id, Stage.PREPARE).outputs.get("rejections_by_reason") or {}
    path = store.run_dir(run_id) / artifacts.REJECTIONS_FILE
    return rejected_rows_page(path, by_reason, reason=reason or None, page=page)
