"""Re-encode images AutoML cannot train on: WEBP/TIFF to PNG/JPEG, and anything over 30 MB
shrunk until it fits. Box coordinates are unaffected because Vertex takes them as fractions."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from vmt.formats.image_header import ImageInfo
from vmt.formats.vertex import MAX_TRAINING_IMAGE_BYTES

TRAINABLE_MIME_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/bmp", "image/x-icon"}
)


@dataclass(frozen=True, slots=True)
class Encoded:
    data: bytes
    mime_type: str


def needs_transcode(info: ImageInfo, size: int | None, *, max_bytes: int) -> bool:
    """Whether the image must be re-encoded before training (type not taken, or too large).

    ``size`` None (unknown length) is decided once the bytes are read."""
    if info.mime_type not in TRAINABLE_MIME_TYPES:
        return True
    return size is not None and size > max_bytes


def transcode_for_training(data: bytes, *, max_bytes: int = MAX_TRAINING_IMAGE_BYTES) -> Encoded:
    """A PNG (images with transparency) or JPEG version of ``data`` no larger than ``max_bytes``,
    downscaled only as much as needed. Raises ValueError/OSError if the image cannot be decoded."""
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        has_alpha = opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info
        image = opened.convert("RGBA" if has_alpha else "RGB")
    fmt, mime = ("PNG", "image/png") if has_alpha else ("JPEG", "image/jpeg")
    scale = 1.0
    while True:
        frame = image
        if scale < 1.0:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            frame = image.resize(size, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        if fmt == "JPEG":
            frame.save(out, format="JPEG", quality=92)
        else:
            frame.save(out, format="PNG", compress_level=6)
        encoded = out.getvalue()
        if len(encoded) <= max_bytes:
            return Encoded(encoded, mime)
        # Bytes scale roughly with the pixel count: aim a little under the limit.
        scale *= max(0.1, min(0.9, 0.95 * (max_bytes / len(encoded)) ** 0.5))
