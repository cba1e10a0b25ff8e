"""The image of an evaluated row, for the rows pages: found where the run has it (the local
trainer's image cache in the run folder, the export's folder or the run's images folder), read
with Pillow as stored (no EXIF rotation: the sizes the metrics and the trainers use are the
stored pixels', ``formats.image_header``), resized once and cached as a JPEG in the run folder
(``rows/images``).

The request names a row, never a path: the location is the row's own (``samples.jsonl``), and
it is served only when it resolves inside one of the run's image folders, or, for a Cloud
Storage object, when a ``RemoteImages`` (``backends.gcs_images``) serves it (the run's own
staged images). Other remote locations (https, other buckets) are not fetched: the page says
the image is not available.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from vmt.formats.image_uri import local_path

log = logging.getLogger("vmt")

SIZES = {"thumb": 320, "full": 1280}
"""Longest side in pixels of each cached size."""
IMAGES_DIR = "images"


def image_roots(run_dir: Path, source: Mapping[str, object]) -> list[Path]:
    """The folders the run's images may be served from: the run folder (the local trainer's
    cache), the export file's folder and the source's images folder."""
    roots = [run_dir.resolve()]
    export = source.get("export_path")
    if isinstance(export, str) and export:
        roots.append(Path(export).resolve().parent)
    images = source.get("images_dir")
    if isinstance(images, str) and images:
        roots.append(Path(images).resolve())
    return roots


def allowed_image(uri: str, roots: list[Path]) -> Path | None:
    """The local file of ``uri`` when it is an absolute path to a regular file inside one of
    ``roots`` (after following links), else None."""
    path = local_path(uri)
    if path is None or not path.is_absolute():
        return None
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_file() or not any(real.is_relative_to(root) for root in roots):
        return None
    return real


class RemoteImages(Protocol):
    """Reads the run's own remote images (``backends.gcs_images.RunImageReader``)."""

    def serves(self, run_id: str, uri: str) -> bool: ...

    def read(self, run_id: str, uri: str) -> bytes | None: ...


def cache_path(cache_dir: Path, key: str, size: str) -> Path:
    """Where the ``size`` copy of the image known by ``key`` is cached."""
    return cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}-{size}.jpg"


def local_key(path: Path) -> str:
    return f"{path}|{path.stat().st_mtime_ns}"


def cached_image(source: Path | bytes, out: Path, size: str) -> Path | None:
    """A JPEG of ``source`` (a file or its bytes) no larger than ``SIZES[size]`` on its
    longest side, made once at ``out``; None when Pillow cannot read it (logged)."""
    from PIL import Image, UnidentifiedImageError

    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    opened = source if isinstance(source, Path) else io.BytesIO(source)
    try:
        with Image.open(opened) as img:
            picture = img.convert("RGB")
            picture.thumbnail((SIZES[size], SIZES[size]))
            picture.save(tmp, format="JPEG", quality=82)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        log.warning("dashboard: cannot read image %s: %s", out.name, exc)
        tmp.unlink(missing_ok=True)
        return None
    tmp.replace(out)
    return out
