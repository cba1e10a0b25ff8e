"""Vertex AI image object detection: import lines and the limits Vertex enforces.

Import file (JSONL, schema ``aiplatform.schema.dataset.ioformat.image.bounding_box``), one image
per line::

    {"imageGcsUri": "gs://bucket/abc.jpg",
     "boundingBoxAnnotations": [{"displayName": "car", "xMin": 0.1, "yMin": 0.2,
                                 "xMax": 0.5, "yMax": 0.6}],
     "dataItemResourceLabels": {"aiplatform.googleapis.com/ml_use": "training"}}

Coordinates are fractions of the image size (pixel / side, unrounded), boxes and class names
exactly as given (UTF-8, not escaped), ``ml_use`` exactly training / validation / test.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import orjson

from vmt.domain import Sample, Split
from vmt.formats.image_header import EXTENSIONS, normalize_mime
from vmt.formats.image_uri import gcs_uri

ML_USE_LABEL = "aiplatform.googleapis.com/ml_use"

# Limits of AutoML image object detection (see docs/reference FORMATS.md, section 2.1).
MAX_BOXES_PER_IMAGE = 500
MIN_IMAGES_PER_LABEL = 10
"""Every label needs at least this many (training) images with a box of it."""
MAX_IMAGES_PER_DATASET = 150_000
MAX_BOXES_PER_DATASET = 1_000_000
MIN_LABELS = 1
MAX_LABELS = 1_000
MAX_TRAINING_IMAGE_BYTES = 30 * 1024 * 1024
MIN_BOX_SIDE_PERCENT = 1
"""Boxes under 1% of the image width or height are dropped by the converter (exactly 1% is
kept)."""
MIN_BOX_SIDE_PX = 8
"""Vertex does not train on boxes under 8 x 8 px: the converter drops them (exactly 8 is kept)."""

_ML_USE = {
    Split.TRAINING: "training",
    Split.VALIDATION: "validation",
    Split.TEST: "test",
}
_RESOURCE_LABELS = {split: {ML_USE_LABEL: value} for split, value in _ML_USE.items()}
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")
_OPTIONS = orjson.OPT_APPEND_NEWLINE


def ml_use(split: Split) -> str:
    """The exact ``ml_use`` label value; unassigned rows cannot be imported with a split."""
    try:
        return _ML_USE[split]
    except KeyError:
        raise ValueError(f"no Vertex ml_use for split {split.value!r}") from None


def import_line(sample: Sample, image_uri: str) -> bytes:
    """One import line (with its trailing newline) for a sample with a size and a split."""
    if sample.width is None or sample.height is None:
        raise ValueError(f"sample {sample.data_row_id} has no image size")
    boxes = [(b.label, b.x0, b.y0, b.x1, b.y1, b.width, b.height) for b in sample.boxes]
    return encode_import_line(image_uri, sample.width, sample.height, sample.split, boxes)


def encode_import_line(
    image_uri: str,
    width: float,
    height: float,
    split: Split,
    boxes: Sequence[tuple[str, float, float, float, float, float, float]],
) -> bytes:
    """`import_line` on plain values: boxes are (label, x0, y0, x1, y1, width, height) in
    pixels (`vmt.formats.conversion_stats.PixelBox`); Vertex takes the corners."""
    resource_labels = _RESOURCE_LABELS.get(split) or {ML_USE_LABEL: ml_use(split)}  # raises
    return orjson.dumps(
        {
            "imageGcsUri": image_uri,
            "boundingBoxAnnotations": [
                {
                    "displayName": label,
                    "xMin": x0 / width,
                    "yMin": y0 / height,
                    "xMax": x1 / width,
                    "yMax": y1 / height,
                }
                for label, x0, y0, x1, y1, _, _ in boxes
            ],
            "dataItemResourceLabels": resource_labels,
        },
        option=_OPTIONS,
    )


def image_extension(mime_type: str | None, row_data: str | None) -> str:
    """``.jpg``/``.png``/... from the mime type, else the suffix of row_data's path, else ''."""
    if mime_type:
        ext = EXTENSIONS.get(mime_type) or EXTENSIONS.get(normalize_mime(mime_type))
        if ext:
            return ext
    if row_data:
        suffix = PurePosixPath(urlsplit(row_data).path).suffix
        if _SUFFIX.fullmatch(suffix):
            return suffix
    return ""


def image_uri(
    data_row_id: str, row_data: str | None, mime_type: str | None, *, prefix: str | None
) -> str | None:
    """Where Vertex reads the image: ``prefix + id + ext`` with a prefix, else the ``gs://``
    URI of a row_data that names a Cloud Storage object (`vmt.formats.image_uri.gcs_uri`:
    ``gs://`` or its https forms); None when there is no prefix and the image is not in GCS."""
    if prefix:
        return prefix + data_row_id + image_extension(mime_type, row_data)
    return None if row_data is None else gcs_uri(row_data)


def limit_problems(
    classes: Mapping[str, Mapping[str, int]], *, images: int, boxes: int
) -> list[str]:
    """What Vertex would refuse to train on, one readable line each (empty when fine).

    ``classes`` is ``{name: {split: images}}`` as in the conversion report.
    """
    problems: list[str] = []
    if not MIN_LABELS <= len(classes) <= MAX_LABELS:
        problems.append(f"{len(classes)} labels (Vertex needs {MIN_LABELS} to {MAX_LABELS})")
    if images > MAX_IMAGES_PER_DATASET:
        problems.append(f"{images} images (Vertex allows {MAX_IMAGES_PER_DATASET} per dataset)")
    if boxes > MAX_BOXES_PER_DATASET:
        problems.append(f"{boxes} boxes (Vertex allows {MAX_BOXES_PER_DATASET} per dataset)")
    few = sorted(
        name
        for name, per_split in classes.items()
        if per_split.get(Split.TRAINING.value, 0) < MIN_IMAGES_PER_LABEL
    )
    if few:
        shown = ", ".join(few[:10]) + (f" and {len(few) - 10} more" if len(few) > 10 else "")
        problems.append(
            f"{len(few)} label(s) with fewer than {MIN_IMAGES_PER_LABEL} training images: {shown}"
        )
    return problems
