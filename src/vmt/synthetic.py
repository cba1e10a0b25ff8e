"""A synthetic detection dataset written as a Labelbox model-run export (the `vmt demo` data).

Images of a few shape classes (circle, square, triangle, star) at varied sizes, rotations and
colours, on noisy gradient backgrounds with clutter (lines, dots, outline scribbles), in images
of varied sizes. The export is exactly the Labelbox export v2 model-run shape (FORMATS.md 1.1):
one NDJSON line per data row whose ``row_data`` is the absolute path of its PNG, with an
80/10/10 training/validation/test split. Everything is a pure function of the seed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
from PIL import Image, ImageDraw, ImageFilter

from vmt.durable_files import atomic_writer

CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star")

DEFAULT_IMAGES = 600
"""Images `vmt demo` generates by default (480 training, 60 validation, 60 test)."""

DEFAULT_SEED = 0

EXPORT_NAME = "export.ndjson"
MODEL_ID = "synthetic-shapes-model"

_SIZE_RANGE = (160, 320)
"""Image width and height are each drawn from this range (inclusive)."""
_OBJECT_FRACTION = (0.12, 0.30)
"""Object size as a fraction of the image's longer side (what a letterboxed model sees),
at most 90% of its shorter side."""
_MAX_OBJECTS = 4
_MAX_OVERLAP_IOU = 0.05


@dataclass(frozen=True, slots=True)
class _Shape:
    label: str
    left: float
    top: float
    width: float
    height: float


def generate_dataset(out_dir: Path, *, images: int, seed: int) -> Path:
    """Write ``images`` PNG files under ``out_dir/images`` and the model-run export
    ``out_dir/export.ndjson`` that references them; return the export's path."""
    if images < 1:
        raise ValueError(f"images must be >= 1, got {images}")
    out_dir = out_dir.resolve()
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    splits = _assign_splits(images, np.random.default_rng([seed, 1]))
    run_id = f"synthetic-run-{seed}"
    export_path = out_dir / EXPORT_NAME
    with atomic_writer(export_path) as out:
        for index in range(images):
            rng = np.random.default_rng([seed, 2, index])
            image, shapes = _draw_image(rng)
            name = f"shape-{index:05d}.png"
            image_path = image_dir / name
            image.save(image_path, format="PNG", compress_level=1)
            row = _export_row(
                seed=seed,
                index=index,
                image_path=image_path,
                size=image.size,
                split=splits[index],
                run_id=run_id,
                shapes=shapes,
            )
            out.write(orjson.dumps(row) + b"\n")
    return export_path


def _assign_splits(images: int, rng: np.random.Generator) -> list[str]:
    n_val = round(images * 0.1)
    n_test = round(images * 0.1)
    labels = ["validation"] * n_val + ["test"] * n_test
    labels += ["training"] * (images - len(labels))
    order = rng.permutation(images)
    return [labels[i] for i in order]


def _stable_id(*parts: object, length: int = 25) -> str:
    digest = hashlib.sha1(":".join(str(p) for p in parts).encode()).hexdigest()
    return ("c" + digest)[:length]


def _export_row(
    *,
    seed: int,
    index: int,
    image_path: Path,
    size: tuple[int, int],
    split: str,
    run_id: str,
    shapes: list[_Shape],
) -> dict[str, object]:
    objects = [
        {
            "feature_id": _stable_id("feature", seed, index, k),
            "feature_schema_id": _stable_id("schema", shape.label),
            "name": shape.label,
            "value": shape.label,
            "annotation_kind": "ImageBoundingBox",
            "classifications": [],
            "bounding_box": {
                "top": shape.top,
                "left": shape.left,
                "height": shape.height,
                "width": shape.width,
            },
        }
        for k, shape in enumerate(shapes)
    ]
    width, height = size
    return {
        "data_row": {
            "id": _stable_id("row", seed, index),
            "global_key": f"synthetic-{seed}-{image_path.name}",
            "external_id": image_path.name,
            "row_data": str(image_path),
        },
        "media_attributes": {"width": width, "height": height, "mime_type": "image/png"},
        "experiments": {
            MODEL_ID: {
                "name": "synthetic shapes",
                "runs": {
                    run_id: {
                        "name": f"synthetic shapes (seed {seed})",
                        "split": split,
                        "labels": [
                            {
                                "id": _stable_id("label", seed, index),
                                "annotations": {
                                    "objects": objects,
                                    "classifications": [],
                                    "relationships": [],
                                },
                            }
                        ],
                        "predictions": [],
                    }
                },
            }
        },
    }


# --- drawing -------------------------------------------------------------------------------


def _draw_image(rng: np.random.Generator) -> tuple[Image.Image, list[_Shape]]:
    width = int(rng.integers(_SIZE_RANGE[0], _SIZE_RANGE[1] + 1))
    height = int(rng.integers(_SIZE_RANGE[0], _SIZE_RANGE[1] + 1))
    background = _background(rng, width, height)
    image = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(image)
    _draw_clutter(draw, rng, width, height)
    shapes: list[_Shape] = []
    for _ in range(int(rng.integers(1, _MAX_OBJECTS + 1))):
        shape = _place_shape(draw, rng, width, height, shapes, background)
        if shape is not None:
            shapes.append(shape)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 1.0))))
    pixels = np.asarray(image, dtype=np.float32)
    sigma = float(rng.uniform(0.0, 14.0))
    noisy = pixels + sigma * rng.standard_normal(size=pixels.shape, dtype=np.float32)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB"), shapes


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    start = rng.uniform(0, 255, size=3)
    end = np.clip(start + rng.uniform(-90, 90, size=3), 0, 255)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xs * math.cos(angle) / width + ys * math.sin(angle) / height
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    grad = start[None, None, :] * (1 - t[..., None]) + end[None, None, :] * t[..., None]
    pixels: np.ndarray = np.clip(grad, 0, 255).astype(np.uint8)
    return pixels


def _random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.integers(0, 256, size=3))
    return (r, g, b)


def _contrasting_colour(rng: np.random.Generator, base: np.ndarray) -> tuple[int, int, int]:
    """A colour well away from the background under the shape, so every shape is visible."""
    for _ in range(20):
        colour = _random_colour(rng)
        if float(np.abs(np.array(colour) - base).sum()) > 150:
            return colour
    inverted = 255 - base
    return (int(inverted[0]), int(inverted[1]), int(inverted[2]))


def _draw_clutter(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, width: int, height: int
) -> None:
    for _ in range(int(rng.integers(0, 7))):
        x0, x1 = rng.uniform(0, width, size=2)
        y0, y1 = rng.uniform(0, height, size=2)
        line_width = int(rng.integers(1, 3))
        draw.line([(x0, y0), (x1, y1)], fill=_random_colour(rng), width=line_width)
    for _ in range(int(rng.integers(0, 12))):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(1.0, 3.5)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=_random_colour(rng))
    for _ in range(int(rng.integers(0, 3))):
        # open scribbles: a few connected segments, never a closed filled shape
        points = [(rng.uniform(0, width), rng.uniform(0, height))]
        for _ in range(int(rng.integers(2, 5))):
            px, py = points[-1]
            points.append((px + rng.uniform(-30, 30), py + rng.uniform(-30, 30)))
        draw.line(points, fill=_random_colour(rng), width=1)


def _polygon(label: str, cx: float, cy: float, radius: float, angle: float) -> list[float]:
    if label == "square":
        count, radii = 4, [radius]
    elif label == "triangle":
        count, radii = 3, [radius]
    else:  # star
        count, radii = 10, [radius, radius * 0.45]
    points: list[float] = []
    for k in range(count):
        theta = angle + 2 * math.pi * k / count
        r = radii[k % len(radii)]
        points += [cx + r * math.cos(theta), cy + r * math.sin(theta)]
    return points


def _iou(a: _Shape, b: _Shape) -> float:
    ix = max(0.0, min(a.left + a.width, b.left + b.width) - max(a.left, b.left))
    iy = max(0.0, min(a.top + a.height, b.top + b.height) - max(a.top, b.top))
    inter = ix * iy
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def _place_shape(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    width: int,
    height: int,
    placed: list[_Shape],
    background: np.ndarray,
) -> _Shape | None:
    label = CLASSES[int(rng.integers(0, len(CLASSES)))]
    for _ in range(25):
        size = min(rng.uniform(*_OBJECT_FRACTION) * max(width, height), 0.9 * min(width, height))
        cx = rng.uniform(size / 2, width - size / 2)
        cy = rng.uniform(size / 2, height - size / 2)
        if label == "circle":
            aspect = rng.uniform(0.85, 1.15)
            rx, ry = size / 2 * aspect, size / 2 / aspect
            xy = [cx - rx, cy - ry, cx + rx, cy + ry]
        else:
            angle = rng.uniform(0, 2 * math.pi)
            poly = _polygon(label, cx, cy, size / 2, angle)
            xs, ys = poly[0::2], poly[1::2]
            xy = [min(xs), min(ys), max(xs), max(ys)]
        x0, y0 = max(0.0, xy[0]), max(0.0, xy[1])
        x1, y1 = min(float(width), xy[2] + 1), min(float(height), xy[3] + 1)
        shape = _Shape(label, round(x0, 1), round(y0, 1), round(x1 - x0, 1), round(y1 - y0, 1))
        if any(_iou(shape, other) > _MAX_OVERLAP_IOU for other in placed):
            continue
        base = background[int(cy), int(cx)].astype(np.float64)
        fill = _contrasting_colour(rng, base)
        if label == "circle":
            draw.ellipse(xy, fill=fill)
        else:
            draw.polygon(poly, fill=fill)
        return shape
    return None
