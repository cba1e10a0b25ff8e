from __future__ import annotations

import orjson
import pytest

from vmt.domain import Box
from vmt.formats.vertex_predictions import parse_prediction_line

URI = "gs://b/images/r1.jpg"
SIZES = {URI: (200, 100)}


def _line(**prediction: object) -> bytes:
    return orjson.dumps(
        {"instance": {"content": URI, "mimeType": "image/jpeg"}, "prediction": prediction}
    )


def test_box_order_is_xmin_xmax_ymin_ymax() -> None:
    line = _line(ids=[7], displayNames=["car"], confidences=[0.8], bboxes=[[0.1, 0.5, 0.2, 0.9]])
    prediction = parse_prediction_line(line, SIZES)
    assert prediction.data_row_id == URI
    [detection] = prediction.detections
    assert detection.box == Box("car", 20.0, 20.0, 100.0, 90.0)
    assert detection.score == 0.8


@pytest.mark.parametrize(
    ("line", "expected", "raises"),
    [
        # no detections at all
        (_line(ids=[], displayNames=[], confidences=[], bboxes=[]), 0, None),
        # prediction missing entirely
        (orjson.dumps({"instance": {"content": URI}}), 0, None),
        # coordinates a hair outside [0, 1] are clipped to the image
        (
            _line(ids=["1"], displayNames=["a"], confidences=[0.5], bboxes=[[-0.01, 1.02, 0, 1]]),
            1,
            None,
        ),
        # lengths disagree
        (
            _line(ids=[1], displayNames=["a", "b"], confidences=[0.5], bboxes=[[0, 1, 0, 1]]),
            0,
            "differ",
        ),
        # a box with three numbers
        (_line(ids=[1], displayNames=["a"], confidences=[0.5], bboxes=[[0, 1, 0]]), 0, "bbox"),
        # an image we did not ask about
        (
            orjson.dumps({"instance": {"content": "gs://b/other.jpg"}, "prediction": {}}),
            0,
            "unknown",
        ),
        # not JSON
        (b"{nope", 0, "JSON"),
    ],
)
def test_lines(line: bytes, expected: int, raises: str | None) -> None:
    if raises:
        with pytest.raises(ValueError, match=raises):
            parse_prediction_line(line, SIZES)
        return
    prediction = parse_prediction_line(line, SIZES)
    assert len(prediction.detections) == expected
    for detection in prediction.detections:
        assert 0 <= detection.box.x0 <= detection.box.x1 <= 200
        assert 0 <= detection.box.y0 <= detection.box.y1 <= 100
