"""COCO detection JSON: ground truth (images, annotations, categories) and results lists.

Boxes are COCO ``[x, y, width, height]`` in pixels. A COCO image becomes a ``Sample`` whose data
row id is the image id (as a string) and whose global key and image URI are its ``file_name``.
COCO has no splits: every image is ``Split.UNASSIGNED``.

Area ranges (small/medium/large) use ``width * height`` of the box, as our metrics do; a COCO
file whose ``area`` fields hold segmentation areas can therefore bin a few boxes differently
from pycocotools. Crowd annotations (``iscrowd: 1``) are left out and reported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from vmt.detection_table import DetectionTableBuilder, KnownRows, PredictionsRead
from vmt.domain import Box, Prediction, Rejection, Sample, Split
from vmt.errors import InputError
from vmt.reasons import Reason


@dataclass(frozen=True)
class CocoGroundTruth:
    samples: list[Sample]
    categories: dict[int, str]
    """Category id -> name."""
    rejections: list[Rejection]


def _load(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path} is not JSON ({exc.msg}, line {exc.lineno})") from exc


def _bbox(value: object) -> tuple[float, float, float, float] | None:
    if not (isinstance(value, list) and len(value) == 4):
        return None
    if not all(type(v) in (int, float) and math.isfinite(v) for v in value):
        return None
    x, y, w, h = (float(v) for v in value)
    if w < 0 or h < 0:
        return None
    return x, y, w, h


def read_ground_truth(path: Path) -> CocoGroundTruth:
    """Read a COCO ground-truth file. Broken annotations are reported, not raised."""
    doc = _load(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise InputError(f"{path} is not a COCO ground-truth file (no 'images' list)")
    categories: dict[int, str] = {}
    for cat in doc.get("categories") or []:
        if isinstance(cat, dict) and isinstance(cat.get("id"), int):
            categories[cat["id"]] = str(cat.get("name", cat["id"]))
    rejections: list[Rejection] = []
    boxes: dict[int, list[Box]] = {}
    for n, ann in enumerate(doc.get("annotations") or [], 1):
        where = f"annotation #{n}"
        if not isinstance(ann, dict):
            rejections.append(Rejection(Reason.MALFORMED_ANNOTATION, None, None, where))
            continue
        image_id, cat_id = ann.get("image_id"), ann.get("category_id")
        bbox = _bbox(ann.get("bbox"))
        if not isinstance(image_id, int) or bbox is None:
            detail = f"{where}: needs an integer image_id and bbox [x, y, w, h] (w, h >= 0)"
            rejections.append(Rejection(Reason.MALFORMED_ANNOTATION, None, None, detail))
            continue
        if cat_id not in categories:
            detail = f"{where}: unknown category_id {cat_id!r}"
            rejections.append(Rejection(Reason.UNKNOWN_CLASS, None, str(image_id), detail))
            continue
        if ann.get("iscrowd"):
            detail = f"{where}: crowd annotations are not evaluated"
            rejections.append(Rejection(Reason.CROWD_ANNOTATION, None, str(image_id), detail))
            continue
        x, y, w, h = bbox
        boxes.setdefault(image_id, []).append(Box.from_ltwh(categories[cat_id], x, y, w, h))
    samples: list[Sample] = []
    seen: set[int] = set()
    for img in doc["images"]:
        if not isinstance(img, dict) or not isinstance(img.get("id"), int) or img["id"] in seen:
            rejections.append(
                Rejection(Reason.MALFORMED_IMAGE, None, None, f"image entry {img!r:.80}")
            )
            continue
        seen.add(img["id"])
        name = str(img.get("file_name") or img["id"])
        width, height = img.get("width"), img.get("height")
        samples.append(
            Sample(
                data_row_id=str(img["id"]),
                image_uri=name,
                width=width if isinstance(width, int) else None,
                height=height if isinstance(height, int) else None,
                split=Split.UNASSIGNED,
                boxes=tuple(boxes.pop(img["id"], ())),
                global_key=name,
            )
        )
    for image_id, lost in boxes.items():
        detail = f"{len(lost)} annotations of image_id {image_id}, which is not in 'images'"
        rejections.append(Rejection(Reason.UNKNOWN_IMAGE, None, str(image_id), detail))
    return CocoGroundTruth(samples=samples, categories=categories, rejections=rejections)


def read_results(
    path: Path, *, categories: Mapping[int, str], known: KnownRows | None = None
) -> PredictionsRead:
    """Read a COCO results list (``[{image_id, category_id, bbox, score}]``).

    Needs the ground truth's categories (ids -> names); image ids are data row ids. Entries are
    numbered from 1 in the reported details.
    """
    doc = _load(path)
    if not isinstance(doc, list):
        raise InputError(f"{path} is not a COCO results file (expected a JSON list)")
    builder = DetectionTableBuilder(known)
    for n, res in enumerate(doc, 1):
        where = f"result #{n}"
        if not isinstance(res, dict):
            builder.reject(Reason.MALFORMED_ROW, None, None, f"{where}: not an object")
            continue
        image_id, cat_id, score = res.get("image_id"), res.get("category_id"), res.get("score")
        bbox = _bbox(res.get("bbox"))
        if not isinstance(image_id, int) or bbox is None:
            builder.reject(Reason.MALFORMED_ROW, None, None, f"{where}: needs image_id and bbox")
            continue
        if not isinstance(score, int | float) or not math.isfinite(score):
            builder.reject(Reason.INVALID_CONFIDENCE, None, str(image_id), f"{where}: no score")
            continue
        name = categories.get(cat_id) if isinstance(cat_id, int) else None
        if name is None:
            detail = f"{where}: unknown category_id {cat_id!r}"
            builder.reject(Reason.UNKNOWN_CLASS, None, str(image_id), detail)
            continue
        row_id = builder.resolve_row(None, str(image_id))
        if row_id is None:
            continue
        x, y, w, h = bbox
        builder.add(None, row_id, name, (x, y, x + w, y + h), float(score))
    return builder.result()


def ground_truth_document(samples: Iterable[Sample], classes: Iterable[str]) -> dict[str, Any]:
    """A COCO ground-truth document; image ids 1..n in order, category ids 1..k in order.

    ``area`` is ``w * h`` (the convention our metrics use). Samples without a size get 0.
    """
    cat_ids = {name: k for k, name in enumerate(classes, 1)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i, sample in enumerate(samples, 1):
        images.append(
            {
                "id": i,
                "file_name": sample.global_key or sample.image_uri,
                "width": sample.width or 0,
                "height": sample.height or 0,
            }
        )
        for box in sample.boxes:
            w, h = box.x1 - box.x0, box.y1 - box.y0
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": cat_ids[box.label],
                    "bbox": [box.x0, box.y0, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    categories = [{"id": k, "name": name} for name, k in cat_ids.items()]
    return {"images": images, "annotations": annotations, "categories": categories}


def results_document(
    predictions: Iterable[Prediction],
    *,
    image_ids: Mapping[str, int],
    category_ids: Mapping[str, int],
) -> list[dict[str, Any]]:
    """A COCO results list for ``predictions`` (data row id -> image id, class -> category)."""
    return [
        {
            "image_id": image_ids[p.data_row_id],
            "category_id": category_ids[d.box.label],
            "bbox": [d.box.x0, d.box.y0, d.box.x1 - d.box.x0, d.box.y1 - d.box.y0],
            "score": d.score,
        }
        for p in predictions
        for d in p.detections
    ]
