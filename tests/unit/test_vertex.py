"""The Vertex import line and image URI rules of issue 2."""

from __future__ import annotations

import json

import orjson
import pytest

from vmt.domain import Box, Sample, Split
from vmt.formats.vertex import (
    MAX_BOXES_PER_DATASET,
    MAX_IMAGES_PER_DATASET,
    image_extension,
    image_uri,
    import_line,
    limit_problems,
)


def make_sample(
    *boxes: Box, split: Split = Split.TRAINING, width: int = 300, height: int = 200
) -> Sample:
    return Sample("dr-1", "gs://b/dr-1.jpg", width, height, split, tuple(boxes))


def test_import_line_exact_bytes() -> None:
    sample = make_sample(Box("car", 100, 50, 200, 150), Box("bus", 0, 0, 300, 200))
    assert import_line(sample, "gs://b/x.jpg") == (
        b'{"imageGcsUri":"gs://b/x.jpg","boundingBoxAnnotations":['
        b'{"displayName":"car","xMin":0.3333333333333333,"yMin":0.25,'
        b'"xMax":0.6666666666666666,"yMax":0.75},'
        b'{"displayName":"bus","xMin":0.0,"yMin":0.0,"xMax":1.0,"yMax":1.0}],'
        b'"dataItemResourceLabels":{"aiplatform.googleapis.com/ml_use":"training"}}\n'
    )


def test_coordinates_are_unrounded_fractions() -> None:
    sample = make_sample(
        Box("a", 1.2345678, 7.000001, 123.456789, 199.99999), width=301, height=203
    )
    box = orjson.loads(import_line(sample, "gs://b/x"))["boundingBoxAnnotations"][0]
    assert box == {
        "displayName": "a",
        "xMin": 1.2345678 / 301,
        "yMin": 7.000001 / 203,
        "xMax": 123.456789 / 301,
        "yMax": 199.99999 / 203,
    }


@pytest.mark.parametrize(
    ("split", "ml_use"),
    [(Split.TRAINING, "training"), (Split.VALIDATION, "validation"), (Split.TEST, "test")],
)
def test_ml_use_values(split: Split, ml_use: str) -> None:
    line = import_line(make_sample(Box("a", 0, 0, 10, 10), split=split), "gs://b/x")
    assert json.loads(line)["dataItemResourceLabels"] == {
        "aiplatform.googleapis.com/ml_use": ml_use
    }


def test_utf8_names_are_not_escaped_and_boxes_keep_order() -> None:
    names = ["voiture électrique", "自転車", "🚗", 'a "quoted" \\ name']
    sample = make_sample(*(Box(n, 0, 0, 10, 10) for n in names))
    line = import_line(sample, "gs://b/x")
    assert "voiture électrique".encode() in line and "自転車".encode() in line
    assert b"\\u" not in line
    assert [b["displayName"] for b in json.loads(line)["boundingBoxAnnotations"]] == names


def test_unassigned_or_sizeless_samples_cannot_be_imported() -> None:
    with pytest.raises(ValueError, match="ml_use"):
        import_line(make_sample(split=Split.UNASSIGNED), "gs://b/x")
    with pytest.raises(ValueError, match="no image size"):
        import_line(Sample("x", "gs://b/x", None, None, Split.TEST), "gs://b/x")


@pytest.mark.parametrize(
    ("mime_type", "row_data", "ext"),
    [
        ("image/jpeg", "https://x/y", ".jpg"),
        ("image/png", None, ".png"),
        ("image/gif", None, ".gif"),
        ("image/bmp", None, ".bmp"),
        ("image/webp", None, ".webp"),
        ("image/tiff", None, ".tiff"),
        ("image/x-icon", None, ".ico"),
        ("IMAGE/JPEG", None, ".jpg"),
        ("image/jpeg", "https://x/photo.png", ".jpg"),  # the mime type wins
        (None, "https://host/dir/photo.JPG?X-Goog-Signature=abc", ".JPG"),
        ("image/heic", "gs://bucket/a/b.heic", ".heic"),
        (None, "/local/path/img.png", ".png"),
        (None, "https://host/image?id=3", ""),
        (None, "https://host/archive.tar.gz.x%20y", ""),
        (None, None, ""),
    ],
)
def test_image_extension(mime_type: str | None, row_data: str | None, ext: str) -> None:
    assert image_extension(mime_type, row_data) == ext


@pytest.mark.parametrize(
    ("row_data", "prefix", "expected"),
    [
        ("gs://bucket/img.jpg", None, "gs://bucket/img.jpg"),
        ("https://host/img.jpg", None, None),
        (None, None, None),
        ("https://host/img.png", "gs://stage/imgs/", "gs://stage/imgs/dr-1.jpg"),
        ("gs://bucket/img.png", "gs://stage/", "gs://stage/dr-1.jpg"),
    ],
)
def test_image_uri(row_data: str | None, prefix: str | None, expected: str | None) -> None:
    assert image_uri("dr-1", row_data, "image/jpeg", prefix=prefix) == expected


def test_limit_problems() -> None:
    ok = {"car": {"training": 10, "test": 1}}
    assert limit_problems(ok, images=11, boxes=20) == []
    few = {"car": {"training": 9}, "bus": {"training": 50}, "dog": {"test": 20}}
    assert limit_problems(few, images=100, boxes=200) == [
        "2 label(s) with fewer than 10 training images: car, dog"
    ]
    big = limit_problems(ok, images=MAX_IMAGES_PER_DATASET + 1, boxes=MAX_BOXES_PER_DATASET + 1)
    assert big == [
        "150001 images (Vertex allows 150000 per dataset)",
        "1000001 boxes (Vertex allows 1000000 per dataset)",
    ]
    assert limit_problems({}, images=0, boxes=0) == ["0 labels (Vertex needs 1 to 1000)"]
    many = {f"c{i}": {"training": 10} for i in range(1001)}
    assert limit_problems(many, images=10, boxes=10) == ["1001 labels (Vertex needs 1 to 1000)"]
