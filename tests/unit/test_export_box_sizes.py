"""The export reader keeps the width and height a Labelbox box gave: Vertex's size rules
(1% of the image, 8 px) and the boxes it returns use them, never ``(left + width) - left``,
which is not ``width`` in floating point at many offsets."""

from __future__ import annotations

import pytest

from vmt.domain import Box
from vmt.formats.conversion_stats import ConversionStats
from vmt.formats.export_boxes import read_box, read_boxes


def _object(left: float, top: float, width: float, height: float) -> dict[str, object]:
    box = {"left": left, "top": top, "width": width, "height": height}
    return {"name": "car", "annotation_kind": "ImageBoundingBox", "bounding_box": box}


@pytest.mark.parametrize(
    ("left", "top", "side", "image"),
    [
        (333.3, 333.3, 51.2, 5120),  # exactly 1% of the image; (333.3 + 51.2) - 333.3 < 51.2
        (101.9, 726.4, 51.2, 5120),
        (726.4, 512.3, 51.2, 5120),  # (726.4 + 51.2) - 726.4 > 51.2
        (0.1, 47.7, 8.0, 400),  # exactly 8 px
    ],
)
def test_boxes_at_the_size_limits_keep_the_size_they_were_given(
    left: float, top: float, side: float, image: int
) -> None:
    obj = _object(left, top, side, side)
    fast_stats, slow_stats = ConversionStats(), ConversionStats()
    fast = read_boxes([obj], "bounding_box", "name", image, image, 1, "r", fast_stats)
    slow = read_box(obj, "bounding_box", "name", image, image, 1, "r", slow_stats)
    assert fast == [slow]
    assert slow == ("car", left, top, left + side, top + side, side, side)
    assert fast_stats.warnings == slow_stats.warnings == {}
    box = Box(*slow)
    assert (box.width, box.height, box.area) == (side, side, side * side)


def test_a_clipped_side_is_measured_after_clipping() -> None:
    stats = ConversionStats()
    box = read_box(
        _object(900.1, 726.4, 151.2, 51.2), "bounding_box", "name", 1000, 1000, 1, "r", stats
    )
    assert box is not None
    assert box[5] == 1000 - 900.1 and box[6] == 51.2  # the clipped width, the given height
    assert stats.warnings == {"box_clipped": 1}
