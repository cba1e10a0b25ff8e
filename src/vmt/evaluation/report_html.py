"""The evaluation report: one self-contained HTML file (inline SVG and base64 images, no network).

Sections: headline metrics; per-class table and AP bars; PR curves; F1/precision/recall against
confidence with the recommended threshold marked; the confusion matrix; the error breakdown; what
was ignored; the worst rows with ground truth and predictions drawn on the image (or on a blank
canvas of the image's size when the image is not available).
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import numpy as np

from vmt.durable_files import write_atomic
from vmt.evaluation.coco_metrics import RECALL_THRESHOLDS
from vmt.evaluation.confidence import curve
from vmt.evaluation.error_breakdown import ERROR_KINDS
from vmt.evaluation.result import BACKGROUND, Evaluation
from vmt.evaluation.svg_charts import Series, bar_chart, color, heatmap, line_chart

log = logging.getLogger("vmt")

ImagePath = Callable[[str], Path | None]
"""data row id -> a local image file, or None."""

_MAX_CURVES = 10
_MAX_MATRIX = 25
_THUMB = 520
GALLERY_BUDGET = 3_000_000
"""Bytes of base64 the worst rows' images take at most together, so that the report (one
file) stays under 5 MB with its charts; each image gets an equal share and is made smaller
until it fits."""
_SMALLER = (_THUMB, 380, 280, 200, 140)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1320px;
color:#1b1b1b;padding:0 16px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid
#ddd;padding-bottom:4px}.muted{color:#666;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #ddd;border-radius:8px;
padding:10px 14px;min-width:110px}.card .v{font-size:22px;font-weight:650}.card .k{font-size:12px;
color:#555}.card.hl{border-color:#1f77b4;background:#f3f8fc}
table{border-collapse:collapse;font-size:13px}th,td{padding:4px 10px;border-bottom:1px solid #eee;
text-align:right}th{background:#fafafa}td:first-child,th:first-child{text-align:left}
.row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.rows{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:14px}
.rowcard{border:1px solid #ddd;border-radius:8px;padding:8px}.rowcard svg{width:100%;height:auto;
background:#eee}.legend span{display:inline-block;margin-right:14px;font-size:12px}
.sw{display:inline-block;width:18px;height:0;border-top:3px solid;vertical-align:middle;
margin-right:4px}
"""


def _num(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def write_report_html(
    evaluation: Evaluation, path: Path, *, image_path: ImagePath | None = None, worst: int = 12
) -> None:
    """Write the report to ``path``; ``image_path`` finds images for the worst rows."""
    html = render_report_html(evaluation, image_path=image_path, worst=worst)
    write_atomic(path, html.encode("utf-8"))


def render_report_html(
    evaluation: Evaluation, *, image_path: ImagePath | None = None, worst: int = 12
) -> str:
    ev = evaluation
    doc = ev.to_json()
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>vmt evaluation: mAP {_num(ev.summary['map'])}</title><style>{_CSS}</style>",
        "</head><body>",
        "<h1>Detection evaluation</h1>",
        f"<div class='muted'>{len(ev.data.rows)} images · {len(ev.data.gt)} ground-truth boxes · "
        f"{len(ev.data.dt)} predictions · {len(ev.classes)} classes · IoU {ev.iou:g} · "
        f"confidence {ev.confidence:g} ({escape(ev.confidence_source)}) · generated "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC by vmt</div>",
        _headline(ev),
        _per_class(ev),
        _curves(ev),
        _confusion(ev),
        _errors(ev),
        _ignored(doc),
        _worst_rows(ev, image_path, worst),
        "</body></html>",
    ]
    return "".join(parts)


def _headline(ev: Evaluation) -> str:
    s = ev.summary
    overall = curve(ev.sweep.total(), 0)
    cards = [
        ("mAP @[.50:.95]", s["map"], True),
        ("AP50", s["map_50"], True),
        ("AP75", s["map_75"], False),
        ("AP small", s["map_small"], False),
        ("AP medium", s["map_medium"], False),
        ("AP large", s["map_large"], False),
        ("AR@1", s["mar_1"], False),
        ("AR@10", s["mar_10"], False),
        ("AR@100", s["mar_100"], False),
    ]
    html = ["<h2>Headline</h2><div class='cards'>"]
    for key, value, highlight in cards:
        cls = "card hl" if highlight else "card"
        html.append(f"<div class='{cls}'><div class='v'>{_num(value)}</div>")
        html.append(f"<div class='k'>{escape(key)}</div></div>")
    html.append(
        f"<div class='card hl'><div class='v'>{_num(overall.best_threshold, 2)}</div>"
        f"<div class='k'>recommended confidence<br>(best F1 {_num(overall.best_f1)} "
        f"at IoU {ev.iou:g})</div></div></div>"
    )
    return "".join(html)


def _per_class(ev: Evaluation) -> str:
    per_class = ev.per_class_json()
    head = (
        "<table><tr><th>class</th><th>AP</th><th>AP50</th><th>AP75</th><th>GT</th><th>pred</th>"
        f"<th>P @{ev.confidence:g}</th><th>R @{ev.confidence:g}</th><th>best F1</th>"
        "<th>at conf.</th></tr>"
    )
    rows = []
    for name, m in per_class.items():
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{_num(m['ap'])}</td>"
            f"<td>{_num(m['ap_50'])}</td><td>{_num(m['ap_75'])}</td>"
            f"<td>{m['gt_count']}</td><td>{m['pred_count']}</td>"
            f"<td>{_num(m['precision'])}</td><td>{_num(m['recall'])}</td>"
            f"<td>{_num(m['best_f1'])}</td><td>{_num(m['best_threshold'], 2)}</td></tr>"
        )
    order = sorted(range(len(ev.classes)), key=lambda k: -(ev.ap[k] or -1.0))
    bars = bar_chart(
        [ev.classes[k] for k in order],
        [ev.ap[k] for k in order],
        title="AP @[.50:.95] by class",
    )
    return (
        "<h2>Per class</h2><div class='row'><div>"
        + head
        + "".join(rows)
        + "</table></div><div>"
        + bars
        + "</div></div>"
    )


def _top_classes(ev: Evaluation, n: int) -> list[int]:
    gt = ev.sweep.gt
    return sorted(range(len(ev.classes)), key=lambda k: (-int(gt[k]), ev.classes[k]))[:n]


def _curves(ev: Evaluation) -> str:
    shown = [k for k in _top_classes(ev, _MAX_CURVES) if ev.pr_precision[k, 0] > -1]
    recall = [float(r) for r in RECALL_THRESHOLDS]
    pr = line_chart(
        [
            Series(ev.classes[k], recall, [float(p) for p in ev.pr_precision[k]], color(i))
            for i, k in enumerate(shown)
        ],
        title=f"Precision-recall at IoU {ev.iou:g} (101-point interpolated)",
        x_label="recall",
        y_label="precision",
    )
    overall = curve(ev.sweep.total(), 0)
    xs = overall.thresholds
    sweep = line_chart(
        [
            Series("F1", xs, overall.f1, "#111"),
            Series("precision", xs, overall.precision, color(0)),
            Series("recall", xs, overall.recall, color(1)),
        ],
        title=f"All classes against confidence (IoU {ev.iou:g})",
        x_label="confidence threshold",
        y_label="score",
        marker_x=overall.best_threshold,
        marker_label=f"best F1 @ {_num(overall.best_threshold, 2)}",
    )
    per_class_f1 = line_chart(
        [
            Series(ev.classes[k], xs, curve(ev.sweep, k).f1, color(i))
            for i, k in enumerate(_top_classes(ev, _MAX_CURVES))
            if ev.sweep.gt[k] > 0
        ],
        title="F1 by class against confidence",
        x_label="confidence threshold",
        y_label="F1",
        marker_x=ev.confidence,
        marker_label=f"chosen {ev.confidence:g}",
    )
    note = ""
    if len(ev.classes) > _MAX_CURVES:
        note = f"<p class='muted'>Curves show the {_MAX_CURVES} classes with most ground truth.</p>"
    return (
        "<h2>Curves</h2>"
        + note
        + f"<div class='row'><div>{pr}</div><div>{sweep}</div><div>{per_class_f1}</div></div>"
    )


def _confusion(ev: Evaluation) -> str:
    k_all = len(ev.classes)
    keep = sorted(_top_classes(ev, _MAX_MATRIX)) if k_all > _MAX_MATRIX else list(range(k_all))
    idx = [*keep, k_all]
    matrix = ev.confusion[np.ix_(idx, idx)].tolist()
    labels = [*(ev.classes[k] for k in keep), BACKGROUND]
    svg = heatmap(
        matrix,
        labels,
        labels,
        title=f"Confusion matrix (class-agnostic matching, IoU {ev.iou:g}, "
        f"confidence {ev.confidence:g})",
        row_axis="ground truth ↓",
        col_axis="prediction →",
    )
    note = (
        f"<p class='muted'>Showing the {_MAX_MATRIX} classes with most ground truth.</p>"
        if k_all > _MAX_MATRIX
        else ""
    )
    return (
        "<h2>Confusion matrix</h2><p class='muted'>Last row: predictions that match no box "
        "(false positives on background). Last column: boxes nothing found.</p>" + note + svg
    )


def _errors(ev: Evaluation) -> str:
    counts = ev.errors.counts
    total = sum(counts.values()) or 1
    head = "".join(f"<th>{k}</th>" for k in ERROR_KINDS)
    rows = [f"<tr><td><b>all</b></td>{''.join(f'<td>{counts[k]}</td>' for k in ERROR_KINDS)}</tr>"]
    for k, name in enumerate(ev.classes):
        cells = "".join(f"<td>{int(v)}</td>" for v in ev.errors.per_class[k])
        rows.append(f"<tr><td>{escape(name)}</td>{cells}</tr>")
    bars = bar_chart(
        list(ERROR_KINDS),
        [counts[k] / total for k in ERROR_KINDS],
        title="Share of errors by cause",
    )
    return (
        f"<h2>Error breakdown (TIDE-style counts, IoU {ev.iou:g}, confidence "
        f"{ev.confidence:g})</h2><div class='row'><div><table><tr><th>class</th>{head}</tr>"
        + "".join(rows)
        + f"</table></div><div>{bars}</div></div>"
    )


def _ignored(doc: dict[str, object]) -> str:
    ignored = doc["ignored_predictions"]
    warnings = doc["warnings"]
    assert isinstance(ignored, dict) and isinstance(warnings, dict)
    by_reason = ignored["by_reason"]
    if not by_reason and not warnings:
        return "<h2>Input</h2><p class='muted'>Every prediction was evaluated.</p>"
    rows = []
    for title, table in (("ignored", by_reason), ("warning", warnings)):
        for reason, info in table.items():
            lines = ", ".join(map(str, info["lines"][:10]))
            example = escape(info["examples"][0]) if info["examples"] else ""
            rows.append(
                f"<tr><td>{title}</td><td>{escape(reason)}</td><td>{info['count']}</td>"
                f"<td>{lines}</td><td style='text-align:left'>{example}</td></tr>"
            )
    return (
        f"<h2>Input</h2><p>{ignored['total']} predictions were not evaluated.</p><table><tr>"
        "<th>kind</th><th>reason</th><th>count</th><th>first lines</th><th>example</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _worst_rows(ev: Evaluation, image_path: ImagePath | None, n: int) -> str:
    worst = ev.worst_rows(n)
    if not worst:
        return "<h2>Worst rows</h2><p class='muted'>No errors at this threshold.</p>"
    legend = (
        "<div class='legend'><span><i class='sw' style='border-color:#2ca02c'></i>ground truth"
        "</span><span><i class='sw' style='border-color:#1f77b4'></i>true positive</span>"
        "<span><i class='sw' style='border-color:#d62728;border-top-style:dashed'></i>false "
        f"positive</span><span class='muted'>predictions with confidence ≥ {ev.confidence:g}"
        "</span></div>"
    )
    share = GALLERY_BUDGET // len(worst)
    cards = [_row_card(ev, i, image_path, share) for i in worst]
    return (
        f"<h2>Worst rows (most false positives + false negatives)</h2>{legend}"
        f"<div class='rows'>{''.join(cards)}</div>"
    )


def _row_card(ev: Evaluation, i: int, image_path: ImagePath | None, share: int) -> str:
    sample = ev.data.rows[i]
    gt, dt = ev.data.gt, ev.data.dt
    g0, g1 = np.searchsorted(gt.image, [i, i + 1])
    d0, d1 = np.searchsorted(dt.image, [i, i + 1])
    kept = [d for d in range(d0, d1) if dt.score[d] >= ev.confidence]
    image = _load_image(image_path, sample.data_row_id, share) if image_path else None
    width, height = sample.width, sample.height
    if image is not None:
        width, height = image[1], image[2]
    if not width or not height:
        xs = [float(gt.x1[j]) for j in range(g0, g1)] + [float(dt.x1[d]) for d in kept]
        ys = [float(gt.y1[j]) for j in range(g0, g1)] + [float(dt.y1[d]) for d in kept]
        width, height = int(max(xs, default=100)) + 1, int(max(ys, default=100)) + 1
    stroke = max(width, height) / 220
    font = max(width, height) / 28
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        'preserveAspectRatio="xMidYMid meet">'
    ]
    if image is not None:
        parts.append(
            f'<image href="data:image/jpeg;base64,{image[0]}" x="0" y="0" width="{width}" '
            f'height="{height}"/>'
        )
    for j in range(g0, g1):
        parts.append(
            _rect(gt.x[j], gt.y[j], gt.w[j], gt.h[j], "#2ca02c", stroke, False,
                  ev.classes[gt.label[j]], font, below=True)
        )  # fmt: skip
    for d in kept:
        tp = bool(ev.det_true_positive[d])
        label = f"{ev.classes[dt.label[d]]} {dt.score[d]:.2f}"
        parts.append(
            _rect(dt.x[d], dt.y[d], dt.w[d], dt.h[d], "#1f77b4" if tp else "#d62728", stroke,
                  not tp, label, font)
        )  # fmt: skip
    parts.append("</svg>")
    name = sample.global_key or sample.data_row_id
    missing = "" if image is not None else " · <i>image not available</i>"
    return (
        f"<div class='rowcard'>{''.join(parts)}<div><b>{escape(name)}</b></div>"
        f"<div class='muted'>{escape(sample.data_row_id)} · TP {ev.row_tp[i]} · "
        f"FP {ev.row_fp[i]} · FN {ev.row_fn[i]}{missing}</div></div>"
    )


def _rect(
    x: float,
    y: float,
    w: float,
    h: float,
    stroke_color: str,
    stroke: float,
    dashed: bool,
    label: str,
    font: float,
    *,
    below: bool = False,
) -> str:
    """A box with its label above it (predictions) or inside its bottom edge (ground truth),
    so the two labels of a matched pair do not overlap."""
    dash = f' stroke-dasharray="{stroke * 4:.1f} {stroke * 3:.1f}"' if dashed else ""
    text_y = y + h - 2 * stroke if below else max(font, y - stroke)
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="none" '
        f'stroke="{stroke_color}" stroke-width="{stroke:.1f}"{dash}><title>{escape(label)}'
        f"</title></rect>"
        f'<text x="{x + stroke:.1f}" y="{text_y:.1f}" font-size="{font:.1f}" '
        f'fill="{stroke_color}" font-family="system-ui, sans-serif" paint-order="stroke" '
        f'stroke="#fff" stroke-width="{stroke:.1f}">{escape(label)}</text>'
    )


def _load_image(
    image_path: ImagePath, data_row_id: str, max_bytes: int
) -> tuple[str, int, int] | None:
    """(base64 JPEG thumbnail of at most ``max_bytes``, original width, original height), or
    None (also when even the smallest thumbnail is larger)."""
    from PIL import Image, UnidentifiedImageError

    path = image_path(data_row_id)
    if path is None:
        return None
    try:
        with Image.open(path) as img:
            width, height = img.size
            picture = img.convert("RGB")
            for side in _SMALLER:
                thumb = picture.copy()
                thumb.thumbnail((side, side))
                buf = io.BytesIO()
                thumb.save(buf, format="JPEG", quality=80)
                encoded = base64.b64encode(buf.getvalue()).decode("ascii")
                if len(encoded) <= max_bytes:
                    return encoded, width, height
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        log.warning("report: cannot read image %s for %s: %s", path, data_row_id, exc)
        return None
    log.warning("report: image %s for %s too large for the report even at %d px", path,
                data_row_id, _SMALLER[-1])  # fmt: skip
    return None
