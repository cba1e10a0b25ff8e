"""Small inline-SVG charts for the HTML report: no JavaScript, no network, no plotting library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
_FONT = 'font-family="system-ui, sans-serif"'


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _fmt(v: float) -> str:
    return f"{v:.1f}"


@dataclass(frozen=True)
class Series:
    name: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    """``None`` breaks the line (undefined value)."""
    color: str
    dashed: bool = False


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    marker_x: float | None = None,
    marker_label: str = "",
    width: int = 560,
    height: int = 340,
) -> str:
    """Lines on [0, 1] x [0, 1] with grid, axes, legend and an optional vertical marker."""
    left, right, top, bottom = 52, 150, 30, 44
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + x * pw

    def py(y: float) -> float:
        return top + (1 - y) * ph

    parts = [_open(width, height), _title(title, left, 18)]
    for i in range(6):
        v = i / 5
        parts.append(
            f'<line x1="{_fmt(px(0))}" y1="{_fmt(py(v))}" x2="{_fmt(px(1))}" y2="{_fmt(py(v))}" '
            'stroke="#e5e5e5"/>'
            f'<line x1="{_fmt(px(v))}" y1="{_fmt(py(0))}" x2="{_fmt(px(v))}" y2="{_fmt(py(1))}" '
            'stroke="#e5e5e5"/>'
            f'<text x="{_fmt(left - 6)}" y="{_fmt(py(v) + 4)}" font-size="11" text-anchor="end" '
            f"{_FONT}>{v:.1f}</text>"
            f'<text x="{_fmt(px(v))}" y="{_fmt(py(0) + 16)}" font-size="11" text-anchor="middle" '
            f"{_FONT}>{v:.1f}</text>"
        )
    parts.append(
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>'
        f'<text x="{_fmt(px(0.5))}" y="{height - 8}" font-size="12" text-anchor="middle" '
        f"{_FONT}>{escape(x_label)}</text>"
        f'<text x="14" y="{_fmt(py(0.5))}" font-size="12" text-anchor="middle" {_FONT} '
        f'transform="rotate(-90 14 {_fmt(py(0.5))})">{escape(y_label)}</text>'
    )
    if marker_x is not None:
        parts.append(
            f'<line x1="{_fmt(px(marker_x))}" y1="{_fmt(py(0))}" x2="{_fmt(px(marker_x))}" '
            f'y2="{_fmt(py(1))}" stroke="#111" stroke-width="1.5" stroke-dasharray="5 3"/>'
            f'<text x="{_fmt(px(marker_x) + 4)}" y="{_fmt(py(1) + 12)}" font-size="11" '
            f"{_FONT}>{escape(marker_label)}</text>"
        )
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        for run in _runs(s.xs, s.ys):
            points = " ".join(f"{_fmt(px(x))},{_fmt(py(y))}" for x, y in run)
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{s.color}" '
                f'stroke-width="2"{dash}><title>{escape(s.name)}</title></polyline>'
            )
    for i, s in enumerate(series[:16]):
        y = top + 8 + i * 16
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(
            f'<line x1="{width - right + 10}" y1="{y}" x2="{width - right + 30}" y2="{y}" '
            f'stroke="{s.color}" stroke-width="3"{dash}/>'
            f'<text x="{width - right + 35}" y="{y + 4}" font-size="11" {_FONT}>'
            f"{escape(_clip(s.name, 16))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _runs(xs: Sequence[float], ys: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys, strict=True):
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [r for r in runs if r]


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    width: int = 560,
    bar_height: int = 18,
) -> str:
    """Horizontal bars on [0, 1]; ``None`` shows as "n/a" (e.g. AP of a class without GT)."""
    left, right, top = 140, 50, 30
    height = top + len(labels) * (bar_height + 6) + 10
    pw = width - left - right
    parts = [_open(width, height), _title(title, 8, 18)]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * (bar_height + 6)
        parts.append(
            f'<text x="{left - 6}" y="{y + bar_height - 5}" font-size="12" text-anchor="end" '
            f"{_FONT}>{escape(_clip(label, 20))}</text>"
            f'<rect x="{left}" y="{y}" width="{pw}" height="{bar_height}" fill="#f1f1f1"/>'
        )
        if value is None:
            parts.append(
                f'<text x="{left + 6}" y="{y + bar_height - 5}" font-size="11" fill="#777" '
                f"{_FONT}>n/a (no ground truth)</text>"
            )
            continue
        parts.append(
            f'<rect x="{left}" y="{y}" width="{_fmt(max(0.0, min(1.0, value)) * pw)}" '
            f'height="{bar_height}" fill="{color(i)}"><title>{escape(label)}: {value:.4f}'
            f"</title></rect>"
            f'<text x="{left + pw + 6}" y="{y + bar_height - 5}" font-size="12" '
            f"{_FONT}>{value:.3f}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def heatmap(
    matrix: Sequence[Sequence[int]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    title: str,
    row_axis: str,
    col_axis: str,
    cell: int = 44,
) -> str:
    """A count matrix, shaded by each row's share (rows sum to their ground-truth count)."""
    left, top = 130, 120
    n_rows, n_cols = len(row_labels), len(col_labels)
    width = max(left + n_cols * cell + 20, round(len(title) * 8.6) + 24)
    height = top + n_rows * cell + 30
    parts = [_open(width, height), _title(title, 8, 18)]
    parts.append(
        f'<text x="{left + n_cols * cell / 2}" y="38" font-size="12" text-anchor="middle" '
        f'{_FONT} font-weight="600">{escape(col_axis)}</text>'
        f'<text x="10" y="{top - 8}" font-size="12" {_FONT} font-weight="600">'
        f"{escape(row_axis)}</text>"
    )
    for j, label in enumerate(col_labels):
        x = left + j * cell + cell / 2
        parts.append(
            f'<text x="{_fmt(x)}" y="{top - 8}" font-size="11" {_FONT} '
            f'transform="rotate(-45 {_fmt(x)} {top - 8})">{escape(_clip(label, 14))}</text>'
        )
    for i, label in enumerate(row_labels):
        y = top + i * cell
        row_total = sum(matrix[i]) or 1
        parts.append(
            f'<text x="{left - 6}" y="{y + cell / 2 + 4}" font-size="11" text-anchor="end" '
            f"{_FONT}>{escape(_clip(label, 18))}</text>"
        )
        for j in range(n_cols):
            v = matrix[i][j]
            share = v / row_total
            fill = _blend(share, diagonal=(i == j))
            ink = "#fff" if share > 0.55 else "#111"
            parts.append(
                f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" '
                f'fill="{fill}" stroke="#fff"><title>{escape(row_labels[i])} -> '
                f"{escape(col_labels[j])}: {v}</title></rect>"
                f'<text x="{left + j * cell + cell / 2}" y="{y + cell / 2 + 4}" font-size="11" '
                f'text-anchor="middle" fill="{ink}" {_FONT}>{v}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _blend(share: float, *, diagonal: bool) -> str:
    # white -> blue on the diagonal (correct), white -> red off it (errors)
    r0, g0, b0 = (31, 119, 180) if diagonal else (214, 39, 40)
    t = max(0.0, min(1.0, share))
    r, g, b = (round(255 + (c - 255) * t) for c in (r0, g0, b0))
    return f"#{r:02x}{g:02x}{b:02x}"


def _open(width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    )


def _title(text: str, x: int, y: int) -> str:
    return f'<text x="{x}" y="{y}" font-size="14" font-weight="600" {_FONT}>{escape(text)}</text>'


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
