"""Image type and size from the first bytes of a file, without decoding the pixels."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

HEADER_BYTES = 64 * 1024
"""Enough leading bytes for the size of every format we accept (JPEG SOF may follow EXIF)."""

_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "ICO": "image/x-icon",
    "MPO": "image/jpeg",
}

EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/webp": ".webp",
    "image/tiff": ".tiff",
    "image/x-icon": ".ico",
    "image/vnd.microsoft.icon": ".ico",
}


_MIME_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/x-ms-bmp": "image/bmp",
    "image/tif": "image/tiff",
}


def normalize_mime(mime: str) -> str:
    """``mime`` without parameters, in lower case, common non-standard names mapped to the
    standard one: ``"Image/JPG; charset=binary"`` -> ``"image/jpeg"``."""
    base = mime.split(";", 1)[0].strip().lower()
    return _MIME_ALIASES.get(base, base)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    mime_type: str
    width: int
    height: int


def sniff_image(head: bytes) -> ImageInfo | None:
    """The type and size of an image from its leading bytes; None if not a supported image."""
    try:
        with Image.open(io.BytesIO(head)) as image:
            fmt = image.format or ""
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    mime = _MIME.get(fmt)
    if mime is None or width <= 0 or height <= 0:
        return None
    return ImageInfo(mime, int(width), int(height))
