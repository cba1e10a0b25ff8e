from __future__ import annotations

import io

import pytest
from PIL import Image

from vmt.formats.image_header import sniff_image
from vmt.formats.image_transcode import needs_transcode, transcode_for_training


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("mode", "fmt", "mime"),
    [
        ("RGB", "WEBP", "image/jpeg"),
        ("RGBA", "WEBP", "image/png"),
        ("RGB", "TIFF", "image/jpeg"),
        ("L", "TIFF", "image/jpeg"),
    ],
)
def test_untrainable_formats_become_jpeg_or_png(mode: str, fmt: str, mime: str) -> None:
    data = _encode(Image.new(mode, (30, 20)), fmt)
    info = sniff_image(data)
    assert info is not None and needs_transcode(info, len(data), max_bytes=10**6)
    encoded = transcode_for_training(data)
    assert encoded.mime_type == mime
    assert sniff_image(encoded.data) == type(info)(mime, 30, 20)


def test_large_images_are_downscaled_under_the_limit() -> None:
    data = _encode(Image.effect_noise((400, 300), 100).convert("RGB"), "PNG")
    encoded = transcode_for_training(data, max_bytes=20_000)
    assert len(encoded.data) <= 20_000
    info = sniff_image(encoded.data)
    assert (
        info is not None
        and info.width < 400
        and info.width / info.height == pytest.approx(4 / 3, rel=0.02)
    )


def test_jpeg_under_the_limit_needs_nothing() -> None:
    data = _encode(Image.new("RGB", (10, 10)), "JPEG")
    info = sniff_image(data)
    assert info is not None and not needs_transcode(info, len(data), max_bytes=10**6)
