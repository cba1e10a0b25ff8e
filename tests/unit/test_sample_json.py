import pytest

from vmt.domain import Box, Detection, Prediction, Rejection, Sample, Split
from vmt.formats.sample_json import (
    prediction_from_json,
    prediction_to_json,
    rejection_from_json,
    rejection_to_json,
    sample_from_json,
    sample_to_json,
)


@pytest.mark.parametrize(
    "sample",
    [
        # every field set
        Sample(
            "row-1",
            "/img/a.png",
            640,
            480,
            Split.TRAINING,
            (Box("car", 1.5, 2.0, 30.0, 40.25), Box("dog", 0, 0, 1, 1)),
            mime_type="image/png",
            global_key="a.png",
            line=7,
        ),
        # unknown size, no boxes, optional fields absent
        Sample("row-2", "https://x/b.jpg", None, None, Split.TEST),
        # unassigned split survives
        Sample("row-3", "file:///c.png", 10, 20, Split.UNASSIGNED, (Box("ü", 0, 0, 5, 5),)),
    ],
)
def test_sample_round_trip(sample: Sample) -> None:
    assert sample_from_json(sample_to_json(sample)) == sample


def test_sample_json_is_compact() -> None:
    line = sample_to_json(Sample("r", "u", 1, 2, Split.TEST, (Box("c", 0, 0, 1, 1),)))
    assert line == b'{"id":"r","uri":"u","w":1,"h":2,"split":"test","boxes":[["c",0,0,1,1]]}'


@pytest.mark.parametrize(
    "prediction",
    [
        Prediction("row-1", (Detection(Box("car", 1, 2, 3, 4), 0.75),)),
        Prediction("row-2"),  # a row with no detections is still a prediction
    ],
)
def test_prediction_round_trip(prediction: Prediction) -> None:
    assert prediction_from_json(prediction_to_json(prediction)) == prediction


@pytest.mark.parametrize(
    "rejection",
    [
        Rejection("image_missing", 12, "row-9", "no such file: /x.png"),
        Rejection("invalid_json", 3),
    ],
)
def test_rejection_round_trip(rejection: Rejection) -> None:
    back = rejection_from_json(rejection_to_json(rejection))
    assert back == rejection
    assert (back.line, back.data_row_id) == (rejection.line, rejection.data_row_id)


def test_rejection_extra_kept() -> None:
    back = rejection_from_json(rejection_to_json(Rejection("x", extra={"url": "http://h/a"})))
    assert back.extra == {"url": "http://h/a"}
