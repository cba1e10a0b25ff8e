import io

import pytest
from PIL import Image

from vmt.formats.image_header import sniff_image


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("PNG", "image/png"),
        ("JPEG", "image/jpeg"),
        ("GIF", "image/gif"),
        ("BMP", "image/bmp"),
        ("WEBP", "image/webp"),
        ("TIFF", "image/tiff"),
    ],
)
def test_sniff_reads_type_and_size_from_prefix(fmt: str, mime: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (123, 45), (10, 200, 30)).save(buf, format=fmt)
    info = sniff_image(buf.getvalue()[:4096])
    assert info is not None
    assert (info.mime_type, info.width, info.height) == (mime, 123, 45)


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n", bytes(range(256))])
def test_sniff_rejects_non_images(data: bytes) -> None:
    assert sniff_image(data) is None
