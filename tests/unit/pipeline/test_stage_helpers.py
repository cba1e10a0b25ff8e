from pathlib import Path

import pytest

from vmt.pipeline.results import MetricsSummary
from vmt.pipeline.stages import local_image_path, resolve_image_uri


@pytest.mark.parametrize(
    ("uri", "base", "expected"),
    [
        # a relative path is taken from the images folder
        ("img/a.png", Path("/data/images"), "/data/images/img/a.png"),
        # absolute paths and URLs stay as they are
        ("/abs/a.png", Path("/data"), "/abs/a.png"),
        ("https://host/a.png?sig=x", Path("/data"), "https://host/a.png?sig=x"),
        ("file:///abs/a.png", Path("/data"), "file:///abs/a.png"),
        ("gs://bucket/a.png", Path("/data"), "gs://bucket/a.png"),
        # no base: unchanged
        ("img/a.png", None, "img/a.png"),
    ],
)
def test_resolve_image_uri(uri: str, base: Path | None, expected: str) -> None:
    assert resolve_image_uri(uri, base) == expected


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/abs/a.png", Path("/abs/a.png")),
        ("file:///abs/with%20space.png", Path("/abs/with space.png")),
        ("https://host/a.png", None),
    ],
)
def test_local_image_path(uri: str, expected: Path | None) -> None:
    assert local_image_path(uri) == expected


def test_metrics_summary_picks_the_headline_figures() -> None:
    metrics = {
        "map": 0.61,
        "map_50": 0.93,
        "map_75": None,
        "counts": {"images": 60, "ground_truth_boxes": 150, "predictions": 900},
        "per_row": [{"data_row_id": "x"}],
    }
    assert MetricsSummary.of_metrics(metrics).to_json() == {
        "mAP": 0.61,
        "AP50": 0.93,
        "images": 60,
        "ground_truth": 150,
        "predictions": 900,
    }
