"""Cloud Storage sources named by gs:// or https URL are staged inside Cloud Storage: used in
place, or copied by objects.rewrite with only their header read here. Through the real
google-cloud-storage client against the GCS emulator, counting the bytes it downloads."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.fakes.gcp import BUCKET, emulator_storage_client, storage_emulator
from tests.fakes.simple_run_context import SimpleRunContext
from vmt.backends.gcs import ImageStager
from vmt.config import load_settings
from vmt.domain import Rejection, Sample, Split
from vmt.formats.image_header import HEADER_BYTES


class _Downloads:
    """Bytes of object media the client received, by object path (``/download/`` responses)."""

    def __init__(self) -> None:
        self.by_object: dict[str, int] = {}

    def hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        url = response.request.url
        if "/download/storage/v1/b/" in url:
            name = url.split("/o/", 1)[1].split("?", 1)[0]
            length = int(response.headers.get("content-length") or 0)
            self.by_object[name] = self.by_object.get(name, 0) + length


@pytest.fixture
def storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, _Downloads]]:
    with storage_emulator() as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        client = emulator_storage_client(url)
        downloads = _Downloads()
        client._http.hooks["response"].append(downloads.hook)
        yield client, downloads


def _put(client: Any, name: str, fmt: str, size: tuple[int, int]) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    client.bucket(BUCKET).blob(name).upload_from_string(buf.getvalue())
    return buf.getvalue()


def _stager(client: Any, **overrides: Any) -> ImageStager:
    settings = load_settings(
        gcs_bucket=BUCKET,
        gcp_project="p",
        gcp_anonymous_credentials=True,
        staging_concurrency=2,
        **overrides,
    )
    return ImageStager(settings, storage_client=client)


def _sample(row: str, uri: str) -> Sample:
    return Sample(row, uri, None, None, Split.TRAINING)


SOURCES = {
    "path": f"https://storage.googleapis.com/{BUCKET}/theirs/site%20A/big.jpg",
    "vhost": f"https://{BUCKET}.storage.googleapis.com/theirs/p.png",
    "console": f"https://storage.cloud.google.com/{BUCKET}/theirs/w.webp",
    "gs": f"gs://{BUCKET}/theirs/site A/big.jpg",
}


def test_https_cloud_storage_sources_are_copied_server_side(
    storage: tuple[Any, _Downloads], tmp_path: Any
) -> None:
    client, downloads = storage
    jpeg = _put(client, "theirs/site A/big.jpg", "JPEG", (600, 400))
    png = _put(client, "theirs/p.png", "PNG", (300, 240))
    _put(client, "theirs/w.webp", "WEBP", (50, 40))
    assert len(jpeg) > 2 * HEADER_BYTES and len(png) > 2 * HEADER_BYTES
    downloads.by_object.clear()

    ctx = SimpleRunContext("r1", tmp_path / "work")
    out = {
        r.data_row_id: r
        for r in _stager(client).stage(ctx, [_sample(k, v) for k, v in SOURCES.items()])
    }

    prefix = f"gs://{BUCKET}/vmt/r1/images/"
    assert {
        k: (v.image_uri, v.width, v.height) for k, v in out.items() if isinstance(v, Sample)
    } == {
        "path": (prefix + "path.jpg", 600, 400),
        "vhost": (prefix + "vhost.png", 300, 240),
        "console": (prefix + "console.jpg", 50, 40),  # WEBP: re-encoded, so downloaded
        "gs": (prefix + "gs.jpg", 600, 400),
    }
    staged = client.bucket(BUCKET)
    assert staged.get_blob("vmt/r1/images/path.jpg").download_as_bytes() == jpeg
    assert staged.get_blob("vmt/r1/images/vhost.png").download_as_bytes() == png
    copied = staged.get_blob("vmt/r1/images/vhost.png")
    assert copied.content_type == "image/png"
    assert copied.metadata == {
        "vmt-source-size": str(len(png)),
        "vmt-width": "300",
        "vmt-height": "240",
    }
    # The copies went through Cloud Storage: only headers came here, the first 4 KiB of each
    # (the WEBP, re-encoded, whole).
    assert 0 < downloads.by_object.get("theirs/site%20A/big.jpg", 0) <= 2 * 4096  # 2 rows
    assert 0 < downloads.by_object.get("theirs/p.png", 0) <= 4096
    assert downloads.by_object.get("theirs/w.webp", 0) > 0

    # A resumed run finds the copies by their metadata and copies nothing again.
    downloads.by_object.clear()
    again = list(_stager(client).stage(ctx, [_sample(k, v) for k, v in SOURCES.items()]))
    assert all(isinstance(r, Sample) for r in again)
    assert ctx.events[-1][1]["copied"] == 0
    assert downloads.by_object == {}


def test_https_cloud_storage_sources_are_used_in_place(
    storage: tuple[Any, _Downloads], tmp_path: Any
) -> None:
    client, downloads = storage
    _put(client, "theirs/site A/big.jpg", "JPEG", (300, 200))
    ctx = SimpleRunContext("r2", tmp_path / "work")
    stager = _stager(client, gcs_use_sources_in_place=True)
    samples = [
        _sample("path", SOURCES["path"]),
        _sample("gone", f"https://{BUCKET}.storage.googleapis.com/nope.jpg"),
    ]
    out = {r.data_row_id: r for r in stager.stage(ctx, samples)}
    assert out["path"] == Sample(
        "path",
        f"gs://{BUCKET}/theirs/site A/big.jpg",
        300,
        200,
        Split.TRAINING,
        mime_type="image/jpeg",
    )
    assert isinstance(out["gone"], Rejection) and out["gone"].reason == "image_missing"
    assert downloads.by_object.get("theirs/site%20A/big.jpg", 0) <= HEADER_BYTES
    assert [b.name for b in client.list_blobs(BUCKET, prefix="vmt/")] == []
