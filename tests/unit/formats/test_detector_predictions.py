"""Our serving container's wire format and the batch output lines of a job on it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from vmt.domain import Box, Detection, Prediction
from vmt.formats.detector_predictions import (
    PredictParameters,
    failure_json,
    instance_of,
    instance_uri,
    parse_detector_line,
    parse_detector_prediction,
    prediction_json,
)
from vmt.formats.vertex_predictions import VertexInstanceFailed, VertexLineError

URI = "gs://b/img/1.png"
SIZES = {URI: (100, 50)}
GOOD = {
    "boxes": [[10, 5, 40, 45.5]],
    "labels": ["car"],
    "scores": [0.9],
    "width": 100,
    "height": 50,
}


def _line(**row: Any) -> bytes:
    return orjson.dumps({"instance": instance_of(URI), **row})


def test_an_answer_round_trips_in_pixels() -> None:
    prediction = Prediction(URI, (Detection(Box("car", 1.5, 2.0, 30.0, 40.0), 0.75),))
    answer = prediction_json(prediction, 100, 50)
    assert answer == {
        "boxes": [[1.5, 2.0, 30.0, 40.0]],
        "labels": ["car"],
        "scores": [0.75],
        "width": 100,
        "height": 50,
    }
    assert parse_detector_prediction(answer, data_row_id=URI) == prediction
    assert parse_detector_line(_line(prediction=answer), SIZES) == prediction


def test_boxes_past_the_image_are_clipped_to_it() -> None:
    answer = {**GOOD, "boxes": [[-3, -1, 140, 60]]}
    (det,) = parse_detector_line(_line(prediction=answer), SIZES).detections
    assert (det.box.x0, det.box.y0, det.box.x1, det.box.y1) == (0.0, 0.0, 100.0, 50.0)


@pytest.mark.parametrize(
    "line",
    [
        _line(prediction=failure_json("image_missing: no such object")),
        _line(error={"status": "INTERNAL", "message": "the container answered 500"}),
    ],
    ids=["answered-error", "errors-file"],
)
def test_an_instance_that_was_not_predicted_is_a_failure_never_an_empty_image(
    line: bytes,
) -> None:
    with pytest.raises(VertexInstanceFailed) as raised:
        parse_detector_line(line, SIZES)
    assert raised.value.uri == URI


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (orjson.dumps({"instance": {"content": URI}, "prediction": GOOD}), "image_uri"),
        (_line(prediction=[]), "not an object"),
        (_line(prediction={**GOOD, "labels": []}), "lengths differ"),
        (_line(prediction={**GOOD, "scores": [1.5]}), "not in [0, 1]"),
        (_line(prediction={**GOOD, "scores": [float("nan")]}), "not in [0, 1]"),
        (_line(prediction={**GOOD, "boxes": [[1, 2, 3]]}), "not [x0, y0, x1, y1]"),
        (_line(prediction={**GOOD, "boxes": [[40, 5, 10, 45]]}), "x1 < x0"),
        (_line(prediction={**GOOD, "labels": [""]}), "label"),
        (_line(prediction={**GOOD, "width": 0}), "positive integers"),
        (_line(prediction={**GOOD, "height": 2.5}), "positive integers"),
    ],
)
def test_a_malformed_line_says_why(line: bytes, why: str) -> None:
    with pytest.raises(VertexLineError) as raised:
        parse_detector_line(line, SIZES)
    assert why in str(raised.value)
    assert not isinstance(raised.value, VertexInstanceFailed)


def test_a_prediction_for_an_image_not_asked_for_is_refused() -> None:
    with pytest.raises(VertexLineError, match="not asked for"):
        parse_detector_line(_line(prediction=GOOD), {})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, PredictParameters(0.05, 100)),
        ({}, PredictParameters(0.05, 100)),
        ({"confidence_threshold": 0, "max_predictions": 5}, PredictParameters(0.0, 5)),
        ({"max_predictions": 5.0}, PredictParameters(0.05, 5)),  # a protobuf Value's double
    ],
)
def test_parameters_default_and_accept_what_vertex_forwards(
    given: Any, expected: PredictParameters
) -> None:
    assert PredictParameters.from_json(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        [],
        {"confidence_threshold": -0.1},
        {"confidence_threshold": "0.5"},
        {"max_predictions": 0},
        {"max_predictions": 2.5},
        {"max_predictions": True},
        {"max_predictions": 10_000},
    ],
)
def test_bad_parameters_are_refused(given: Any) -> None:
    with pytest.raises(ValueError):
        PredictParameters.from_json(given)


@pytest.mark.parametrize(
    "instance", [URI, {"url": URI}, {"image_uri": ""}, {"image_uri": 3}, {"image_uri": "x" * 5000}]
)
def test_an_instance_names_one_image(instance: Any) -> None:
    assert instance_uri(instance_of(URI)) == URI
    with pytest.raises(ValueError, match="image_uri"):
        instance_uri(instance)
