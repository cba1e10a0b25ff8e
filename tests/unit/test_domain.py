import pytest

from vmt.domain import Box, Split


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("training", Split.TRAINING),
        ("TRAIN", Split.TRAINING),
        (" Validation ", Split.VALIDATION),
        ("val", Split.VALIDATION),
        ("Test", Split.TEST),
        ("testing", Split.UNASSIGNED),  # not a Labelbox spelling
        ("", Split.UNASSIGNED),
        (None, Split.UNASSIGNED),
        (3, Split.UNASSIGNED),
    ],
)
def test_split_parse(raw: object, expected: Split) -> None:
    assert Split.parse(raw) is expected


def test_box_ltwh_round_trip() -> None:
    box = Box.from_ltwh("car", 10.5, 20.0, 30.0, 40.25)
    assert (box.x0, box.y0, box.x1, box.y1) == (10.5, 20.0, 40.5, 60.25)
    assert box.to_ltwh() == (10.5, 20.0, 30.0, 40.25)
    assert box.area == 30.0 * 40.25
