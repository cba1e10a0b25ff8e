"""What the rows pages show (no HTTP here): a page of a run's rows filtered by what went wrong,
one row with every box, and one row in two runs side by side.

Boxes are drawn in the coordinates the metrics used (pixels of the original image): each tile
is an SVG whose viewBox is the image's size, so the thumbnail and the boxes scale together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from vmt.errors import InputError
from vmt.evaluation.error_breakdown import ERROR_KINDS
from vmt.evaluation.svg_charts import color
from vmt.pipeline.store import RunStore
from vmt.service.dashboard.links import LABELBOX_APP
from vmt.service.dashboard.row_images import (
    IMAGES_DIR,
    allowed_image,
    cache_path,
    cached_image,
    image_roots,
    local_key,
)
from vmt.service.dashboard.row_table import FILTERS, BoxRow, RowTable, TableRow
from vmt.service.dashboard.run_rows import ROWS_DIR, RunRows

ROWS_PER_PAGE = 48
FILTER_TITLES = {
    "all": "all rows",
    "errors": "any error",
    "localisation": "poor localisation",
    "classification": "wrong class",
    "duplicate": "duplicate",
    "background": "false positive (background)",
    "both": "wrong class and loose box",
    "missed": "missed",
    "suspect": "likely label error",
}
STATUS_TITLES = {
    "tp": "true positive",
    "below": "below the confidence",
    "ignored": "ignored (crowd / area)",
    "found": "found",
    "missed": "missed",
    **{kind: f"false positive: {FILTER_TITLES[kind]}" for kind in ERROR_KINDS if kind != "missed"},
}


@dataclass(frozen=True, slots=True)
class DrawnBox:
    kind: str
    label: str
    colour: str
    x: float
    y: float
    w: float
    h: float
    score: float | None
    status: str
    status_title: str
    iou: float | None
    error: bool

    @property
    def caption(self) -> str:
        score = f" {self.score:.2f}" if self.score is not None else ""
        return f"{self.label}{score}"


@dataclass(frozen=True, slots=True)
class Tile:
    row: TableRow
    boxes: list[DrawnBox]
    width: float
    height: float
    stroke: float
    font: float
    image: bool
    """The run has this row's image locally (else only the boxes are drawn)."""

    @property
    def drawn(self) -> list[DrawnBox]:
        """Ground truth and the predictions kept at the confidence."""
        return [b for b in self.boxes if b.status != "below"]


@dataclass(frozen=True, slots=True)
class RowsView:
    run_id: str
    tiles: list[Tile]
    kind: str
    cls: str | None
    classes: tuple[str, ...]
    confidence: float
    iou: float
    page: int
    pages: int
    total: int
    filters: Mapping[str, str]


def _tile(
    table: RowTable, row: TableRow, boxes: list[BoxRow], shown: Callable[[str], bool]
) -> Tile:
    width, height = float(row.width or 0), float(row.height or 0)
    if not width or not height:
        width = max((b.x + b.w for b in boxes), default=100.0) + 1
        height = max((b.y + b.h for b in boxes), default=100.0) + 1
    drawn = [
        DrawnBox(
            kind=b.kind, label=table.classes[b.label], colour=color(b.label), x=b.x, y=b.y,
            w=b.w, h=b.h, score=b.score, status=b.status,
            status_title=STATUS_TITLES.get(b.status, b.status), iou=b.iou,
            error=b.status not in ("tp", "found", "below", "ignored"),
        )
        for b in boxes
    ]  # fmt: skip
    side = max(width, height)
    image = shown(row.image_uri)
    return Tile(row, drawn, width, height, stroke=side / 250, font=side / 32, image=image)


def _roots(store: RunStore, run_id: str) -> list[Path]:
    return image_roots(store.run_dir(run_id), store.get_run(run_id).config.source.options)


def _shown(store: RunStore, rows: RunRows, run_id: str) -> Callable[[str], bool]:
    """Whether the dashboard can show the image at a row's location."""
    roots = _roots(store, run_id)
    remote = rows.remote

    def shown(uri: str) -> bool:
        if remote is not None and remote.serves(run_id, uri):
            return True
        return allowed_image(uri, roots) is not None

    return shown


def class_index(table: RowTable, name: str | None) -> int | None:
    """The index of class ``name`` (None for none). Raises ``InputError`` for an unknown one."""
    if not name:
        return None
    if name not in table.classes:
        raise InputError(f"unknown class {name!r}")
    return table.classes.index(name)


def rows_view(
    store: RunStore,
    rows: RunRows,
    run_id: str,
    *,
    kind: str,
    cls: str | None,
    confidence: float | None,
    page: int,
    size: int = ROWS_PER_PAGE,
) -> RowsView:
    """Page ``page`` of the rows passing the filter. Raises ``UnknownRunError``,
    ``NoRowsError`` and ``InputError`` (bad filter, class or confidence)."""
    if kind not in FILTERS:
        raise InputError(f"unknown filter {kind!r}")
    table = rows.table(run_id, confidence)
    k = class_index(table, cls)
    total = table.count(kind, k)
    pages = max(1, -(-total // size))
    page = max(1, min(page, pages))
    found = table.page(kind, k, limit=size, offset=(page - 1) * size)
    boxes = table.boxes([r.idx for r in found])
    shown = _shown(store, rows, run_id)
    return RowsView(
        run_id=run_id,
        tiles=[_tile(table, r, boxes[r.idx], shown) for r in found],
        kind=kind,
        cls=cls or None,
        classes=table.classes,
        confidence=table.confidence,
        iou=table.iou,
        page=page,
        pages=pages,
        total=total,
        filters=FILTER_TITLES,
    )


@dataclass(frozen=True, slots=True)
class RowView:
    run_id: str
    tile: Tile
    confidence: float
    iou: float
    labelbox_url: str | None


def labelbox_row_url(data_row_id: str) -> str:
    """The data row in Labelbox's catalog."""
    return f"{LABELBOX_APP}/catalog?dataRowId={quote(data_row_id, safe='')}"


def tile_of(store: RunStore, rows: RunRows, table: RowTable, run_id: str, data_row_id: str) -> Tile:
    """The tile of a row ``table`` holds. Raises ``KeyError`` for a row it does not hold."""
    row = table.row(data_row_id)
    if row is None:
        raise KeyError(data_row_id)
    shown = _shown(store, rows, run_id)
    return _tile(table, row, table.boxes([row.idx])[row.idx], shown)


def row_view(
    store: RunStore, rows: RunRows, run_id: str, data_row_id: str, confidence: float | None
) -> RowView | None:
    """One row with every box; None when the run did not evaluate it. Raises as
    ``rows_view``."""
    table = rows.table(run_id, confidence)
    if table.row(data_row_id) is None:
        return None
    source = store.get_run(run_id).config.source
    url = labelbox_row_url(data_row_id) if source.kind == "labelbox" else None
    tile = tile_of(store, rows, table, run_id, data_row_id)
    return RowView(run_id, tile, table.confidence, table.iou, url)


SUSPECTS_CSV_ROWS = 10_000
SUSPECT_REASON = "confident prediction disagrees with the ground truth"


def likely_label_errors(rows: RunRows, run_id: str, *, limit: int | None = None) -> list[TableRow]:
    """The rows with a confident prediction on no labelled box or on a box of another class,
    most confident first (at most ``limit``, or ``SUSPECTS_CSV_ROWS``). Raises as
    ``rows_view``."""
    return rows.table(run_id).page("suspect", None, limit=limit or SUSPECTS_CSV_ROWS, offset=0)


def ranking_csv(found: list[TableRow]) -> str:
    """``found`` as ``vmt select``'s ranking.csv: rank, data_row_id, global_key, score, reason."""
    import csv
    import io

    from vmt.pool.select import RANKING_COLUMNS

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RANKING_COLUMNS)
    for rank, row in enumerate(found, start=1):
        writer.writerow(
            [rank, row.data_row_id, row.global_key or "", f"{row.suspect:.4f}", SUSPECT_REASON]
        )
    return out.getvalue()


def row_image(
    store: RunStore, rows: RunRows, run_id: str, data_row_id: str, size: str
) -> Path | None:
    """The cached JPEG of the row's image at ``size`` (``row_images.SIZES``); None when the run
    has no image the dashboard may show for it. Raises as ``rows_view``."""
    table = rows.table(run_id)
    row = table.row(data_row_id)
    if row is None:
        return None
    cache = store.run_dir(run_id) / ROWS_DIR / IMAGES_DIR
    if rows.remote is not None and rows.remote.serves(run_id, row.image_uri):
        out = cache_path(cache, row.image_uri, size)
        if out.is_file():
            return out
        data = rows.remote.read(run_id, row.image_uri)
        return None if data is None else cached_image(data, out, size)
    found = allowed_image(row.image_uri, _roots(store, run_id))
    if found is None:
        return None
    return cached_image(found, cache_path(cache, local_key(found), size), size)
