"""`gcs_object`: which locations are Cloud Storage objects (gs:// and the https URLs Cloud
Storage serves objects at), and which are not."""

from __future__ import annotations

import pytest

from vmt.formats.image_uri import GcsPath, gcs_object, gcs_uri


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("gs://b-1/a/x.jpg", ("b-1", "a/x.jpg")),
        ("gs://b-1/site A/x%20y.jpg", ("b-1", "site A/x%20y.jpg")),  # gs:// names are literal
        ("https://storage.googleapis.com/labelbox-sample-datasets/Docs/basic.jpg",
         ("labelbox-sample-datasets", "Docs/basic.jpg")),
        ("https://lb-yard.storage.googleapis.com/site%20A/frame_0002.jpg",
         ("lb-yard", "site A/frame_0002.jpg")),
        ("https://storage.cloud.google.com/my_bucket/a%2Fb.png", ("my_bucket", "a/b.png")),
        ("https://my.dotted.bucket.storage.googleapis.com/x.jpg", ("my.dotted.bucket", "x.jpg")),
        ("HTTPS://Storage.GoogleAPIs.com/bkt/%C3%BC.jpg", ("bkt", "ü.jpg")),
        ("https://storage.googleapis.com:443/bkt/x.jpg", ("bkt", "x.jpg")),
        ("http://storage.googleapis.com/bkt/x+y.jpg", ("bkt", "x+y.jpg")),
    ],
)  # fmt: skip
def test_cloud_storage_locations(location: str, expected: tuple[str, str]) -> None:
    assert gcs_object(location) == GcsPath(*expected)
    assert gcs_uri(location) == f"gs://{expected[0]}/{expected[1]}"


@pytest.mark.parametrize(
    "location",
    [
        "https://cdn.example.com/bkt/x.jpg",
        "https://storage.googleapis.com.evil.example/bkt/x.jpg",
        "https://evil.example/storage.googleapis.com/bkt/x.jpg",
        "https://storage.googleapis.com/bkt/x.jpg?X-Goog-Signature=abc",  # signed: the URL it is
        "https://storage.googleapis.com/bkt/x.jpg#frag",
        "https://user:pw@storage.googleapis.com/bkt/x.jpg",
        "https://storage.googleapis.com:8443/bkt/x.jpg",
        "https://storage.googleapis.com/bkt/",
        "https://storage.googleapis.com/bkt",
        "https://storage.googleapis.com/",
        "https://storage.googleapis.com/UPPER/x.jpg",  # not a bucket name
        "https://storage.googleapis.com/bkt/a%0Ab.jpg",  # a line feed: no object has it
        "https://storage.googleapis.com/bkt/%FF.jpg",  # not UTF-8
        "https://.storage.googleapis.com/x.jpg",
        "gs://bkt/",
        "gs:///x.jpg",
        "s3://bkt/x.jpg",
        "/local/x.jpg",
        "file:///x.jpg",
        "https://[::1/x",
    ],
)
def test_not_cloud_storage_objects(location: str) -> None:
    assert gcs_object(location) is None
    assert gcs_uri(location) is None


def test_vertex_output_finds_rows_named_by_https_cloud_storage_urls() -> None:
    from vmt.domain import Sample, Split
    from vmt.formats.evaluation_inputs import sample_finder

    rows = [
        Sample("r1", "https://lb-yard.storage.googleapis.com/site%20A/x.jpg", 8, 8, Split.TEST),
        Sample("r2", "https://storage.googleapis.com/lb-yard/site%20B/x.jpg", 8, 8, Split.TEST),
        Sample("r3", "gs://lb-yard/site C/x.jpg", 8, 8, Split.TEST),
    ]
    find = sample_finder(rows)
    # The file name x.jpg is shared by every row: only the object itself can match.
    assert find("gs://lb-yard/site A/x.jpg") is rows[0]
    assert find("gs://lb-yard/site B/x.jpg") is rows[1]
    assert find("https://storage.cloud.google.com/lb-yard/site%20C/x.jpg") is rows[2]
    assert not isinstance(find("gs://lb-yard/site D/x.jpg"), Sample)
