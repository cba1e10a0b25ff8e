import numpy as np
import pytest

from vmt.backends.local.validation_ap import average_precision_50

TRUTH = [
    (np.array([[0, 0, 10, 10], [20, 20, 40, 40]], dtype=np.float32), np.array([0, 1])),
    (np.array([[5, 5, 15, 15]], dtype=np.float32), np.array([0])),
]


def _dets(rows: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    array = np.array(rows, dtype=np.float32).reshape(-1, 6)
    return array[:, :4], array[:, 4], array[:, 5].astype(int)


def test_perfect_detections() -> None:
    dets = [
        _dets([[0, 0, 10, 10, 0.9, 0], [20, 20, 40, 40, 0.8, 1]]),
        _dets([[5, 5, 15, 15, 0.7, 0]]),
    ]
    assert average_precision_50(TRUTH, dets, 2) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("rows_image0", "expected"),
    [
        # a false positive ranked first: class 0 precision 1/2 then 2/3, interpolated to 2/3
        # at both recall steps; class 1 is perfect
        (
            [[50, 50, 60, 60, 0.99, 0], [0, 0, 10, 10, 0.9, 0], [20, 20, 40, 40, 0.8, 1]],
            (2 / 3 + 1) / 2,
        ),
        # wrong class: class 0 finds one of two, class 1 finds nothing
        ([[0, 0, 10, 10, 0.9, 1]], (0.5 + 0.0) / 2),
        # a duplicate of a found box is a false positive below it: no harm to AP
        ([[0, 0, 10, 10, 0.9, 0], [0, 0, 10, 10, 0.5, 0], [20, 20, 40, 40, 0.8, 1]], 1.0),
    ],
)
def test_imperfect_detections(rows_image0: list[list[float]], expected: float) -> None:
    dets = [_dets(rows_image0), _dets([[5, 5, 15, 15, 0.7, 0]])]
    assert average_precision_50(TRUTH, dets, 2) == pytest.approx(expected)
