"""The box rules of the conversion: clip to the image, drop what is empty or too small, warn.

Boxes come in as Labelbox objects (pixels, ``left``/``top``/``width``/``height``) and go out as
plain ``(label, x0, y0, x1, y1, width, height)`` tuples clipped to the image, in input order:
the width and height as given (``x1 - x0`` is not always ``width`` in floating point), or the
clipped box's where clipping changed a side; the size rules below use those. Per object:
``box_invalid`` (geometry not four numbers, or no name), ``box_degenerate`` (empty after
clipping, dropped), ``box_too_small`` (under 1% of the image width or height, or under 8 x 8 px,
after clipping: Vertex's minimums, dropped; exactly 1% and exactly 8 px are kept; the detail
says which), ``box_clipped`` (changed by clipping, kept),
``unsupported_annotation`` (not a box: polygon, point, line, mask..., ignored).
"""

from __future__ import annotations

from math import inf, isfinite
from typing import Any

from vmt.formats.conversion_stats import ConversionStats, PixelBox, clip_text
from vmt.formats.vertex import MIN_BOX_SIDE_PERCENT, MIN_BOX_SIDE_PX
from vmt.reasons import Reason

_SIDE_FACTOR = 100.0 / MIN_BOX_SIDE_PERCENT
"""A clipped box is kept when ``side * 100 >= image side`` (exactly 1% is kept)."""
_MIN_PX = float(MIN_BOX_SIDE_PX)


def read_boxes(
    objects: list[Any],
    box_key: str,
    name_key: str,
    width: int | None,
    height: int | None,
    line: int,
    data_row_id: str,
    stats: ConversionStats,
    *,
    vertex_limits: bool = True,
) -> list[PixelBox]:
    """The row's boxes, clipped and filtered, in input order (plain tuples, no objects).

    The hot loop of the converter: a box with float geometry that lies inside the image
    and is at least 1% of each side is taken as is; everything else goes through `read_box`,
    the reference implementation of every box rule (tests pin that both agree).
    """
    boxes: list[PixelBox] = []
    append = boxes.append
    sized = width is not None and height is not None
    # Without Vertex's limits, any positive side passes the quick size tests (x * inf >= w).
    factor = _SIDE_FACTOR if vertex_limits else inf
    min_px = _MIN_PX if vertex_limits else 0.0
    for o in objects:
        try:
            geometry = o[box_key]
            left = geometry["left"]
            top = geometry["top"]
            w = geometry["width"]
            h = geometry["height"]
            name = o[name_key]
        except (KeyError, TypeError, IndexError):
            pass
        else:
            if (
                sized
                and type(left) is float
                and type(top) is float
                and type(w) is float
                and type(h) is float
                and type(name) is str
                and name
            ):
                x1 = left + w
                y1 = top + h
                if (
                    left >= 0.0
                    and top >= 0.0
                    and x1 <= width  # type: ignore[operator]
                    and y1 <= height  # type: ignore[operator]
                    and w * factor >= width  # type: ignore[operator]
                    and h * factor >= height  # type: ignore[operator]
                    and w >= min_px
                    and h >= min_px
                ):
                    append((name, left, top, x1, y1, w, h))
                    continue
        box = read_box(
            o,
            box_key,
            name_key,
            width,
            height,
            line,
            data_row_id,
            stats,
            vertex_limits=vertex_limits,
        )
        if box is not None:
            append(box)
    return boxes


def read_box(
    o: Any,
    box_key: str,
    name_key: str,
    width: int | None,
    height: int | None,
    line: int,
    data_row_id: str,
    stats: ConversionStats,
    *,
    vertex_limits: bool = True,
) -> PixelBox | None:
    """Every box rule for one object: the box to keep, or None (with its warning)."""
    geometry = o.get(box_key) if type(o) is dict else None
    if geometry is None:
        _warn_unsupported(o, line, data_row_id, stats)
        return None
    try:
        left = geometry["left"]
        top = geometry["top"]
        w = geometry["width"]
        h = geometry["height"]
    except (KeyError, TypeError, IndexError):
        detail = f"{box_key} is not left/top/width/height: {clip_text(repr(geometry))}"
        stats.warn(Reason.BOX_INVALID, line, data_row_id, detail)
        return None
    name = o.get(name_key)
    if type(name) is not str or not name:
        name = o.get("value")
    if not (_numbers(left, top, w, h) and type(name) is str and name):
        detail = f"unusable box or name: {clip_text(repr(o))}"
        stats.warn(Reason.BOX_INVALID, line, data_row_id, detail)
        return None
    x1 = left + w
    y1 = top + h
    if width is None or height is None:
        # No image size: nothing to clip against; only empty boxes are dropped.
        if not (x1 > left and y1 > top and isfinite(x1) and isfinite(y1)):
            stats.warn(Reason.BOX_DEGENERATE, line, data_row_id, f"{name}: {w}x{h}")
            return None
        return (name, left, top, x1, y1, w, h)
    cx0 = 0 if left < 0 else left
    cy0 = 0 if top < 0 else top
    cx1 = width if x1 > width else x1
    cy1 = height if y1 > height else y1
    cw = w if cx0 == left and cx1 == x1 else cx1 - cx0
    ch = h if cy0 == top and cy1 == y1 else cy1 - cy0
    if not (cw > 0 and ch > 0):
        detail = f"{name}: {cw}x{ch} px after clipping to {width}x{height}"
        stats.warn(Reason.BOX_DEGENERATE, line, data_row_id, detail)
        return None
    if vertex_limits:
        if cw * _SIDE_FACTOR < width or ch * _SIDE_FACTOR < height:
            detail = f"{name}: {cw}x{ch} px is under 1% of the image's {width}x{height}"
            stats.warn(Reason.BOX_TOO_SMALL, line, data_row_id, detail)
            return None
        if cw < _MIN_PX or ch < _MIN_PX:
            detail = f"{name}: {cw}x{ch} px is under Vertex's minimum of 8 x 8 px"
            stats.warn(Reason.BOX_TOO_SMALL, line, data_row_id, detail)
            return None
    if cx0 != left or cy0 != top or cx1 != x1 or cy1 != y1:
        detail = f"{name}: ({left}, {top}, {x1}, {y1}) clipped to {width}x{height}"
        stats.warn(Reason.BOX_CLIPPED, line, data_row_id, detail)
    return (name, cx0, cy0, cx1, cy1, cw, ch)


def _warn_unsupported(o: Any, line: int, data_row_id: str, stats: ConversionStats) -> None:
    kind = o.get("annotation_kind") if type(o) is dict else None
    if kind is None and type(o) is dict:
        kind = "object with keys " + ", ".join(sorted(str(k) for k in o)[:6])
    elif kind is None:
        kind = f"non-object {type(o).__name__}"
    stats.warn(Reason.UNSUPPORTED_ANNOTATION, line, data_row_id, f"ignored {clip_text(str(kind))}")


def _numbers(*values: Any) -> bool:
    return all(type(v) is float or type(v) is int for v in values)
