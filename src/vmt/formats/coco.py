"""COCO detection JSON: ground truth (images, annotations, categories) and results lists.

Boxes are COCO ``[x, y, width, height]`` in pixels. A COCO image becomes a ``Sample`` whose data
row id is the image id (as a string) and whose global key and image URI are its ``file_name``.
COCO has no splits: every image is ``Split.UNASSIGNED``.

As in pycocotools: size ranges (small/medium/large) use each annotation's ``area`` when given
(``w * h`` otherwise); crowd annotations (``iscrowd: 1``) are ignore regions (a detection on one
is neither a true nor a false positive); images are evaluated in ascending id order, which is
how equal scores are ordered. Image and category ids may be integers (not necessarily
contiguous) or strings; an integral float (``1.0``, as pandas ``to_json`` writes ids) is the
integer it names, as in pycocotools; any other number is refused with the field and value named.
A result whose score is not a finite number (``NaN``, as Python's ``json.dump`` writes it) is
reported and left out; the others are scored.

Where pycocotools departs from the COCO rule, vmt keeps the rule and says so: an annotation
whose id is 0 is an ordinary box here, while pycocotools' matching stores the matched
annotation id with 0 meaning "no match", so a detection matched to it counts there as a false
positive and the box as missed (`zero_id_warning`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmt.detection_table import DetectionTableBuilder, KnownRows, PredictionsRead
from vmt.domain import Box, Prediction, Rejection, Sample, Split
from vmt.errors import InputError
from vmt.formats.json_records import Malformed, read_document, read_records
from vmt.reasons import Reason


@dataclass(frozen=True)
class CocoGroundTruth:
    samples: list[Sample]
    """In ascending image id order (the order pycocotools evaluates images in)."""
    categories: dict[CocoId, str]
    """Category id -> name."""
    rejections: list[Rejection]
    warnings: list[Rejection] = field(default_factory=list)
    """Annotations kept that pycocotools would score differently (``annotation_id_zero``)."""


CocoId = int | str
"""COCO ids: integers (any, not necessarily contiguous) or strings."""


def _coco_id(value: object) -> CocoId | None:
    """``value`` as a COCO id (an integral float is its integer), or None when it is none."""
    if type(value) is int or (type(value) is str and value):
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return None


def _id_problem(name: str, value: object) -> str:
    """Why ``value`` of the field ``name`` is not a COCO id (`_coco_id` gave None)."""
    if value is None:
        return f"no {name}"
    if type(value) is float and math.isfinite(value):
        return f"{name} {value!r} is not an integer"
    return f"{name} {value!r:.80} is not an id (an integer or a string)"


def _int_size(value: object) -> int | None:
    if type(value) is float and value.is_integer():
        return int(value)
    return value if type(value) is int else None


def _order(image_id: CocoId) -> tuple[int, int | str]:
    """pycocotools sorts image ids: numbers numerically, strings as strings."""
    return (0, image_id) if type(image_id) is int else (1, image_id)


def _bbox(value: object) -> tuple[float, float, float, float] | None:
    if not (isinstance(value, list) and len(value) == 4):
        return None
    if not all(type(v) in (int, float) and math.isfinite(v) for v in value):
        return None
    x, y, w, h = (float(v) for v in value)
    if w < 0 or h < 0:
        return None
    return x, y, w, h


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and type(value) is not bool and math.isfinite(value):
        return float(value)
    return None


def _section(doc: dict[str, Any], key: str, path: Path) -> list[Any]:
    """``doc[key]`` as a list (absent or null: empty); any other JSON type is an InputError."""
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{path}: '{key}' must be a list, not {type(value).__name__}")
    return value


def read_ground_truth(path: Path) -> CocoGroundTruth:
    """Read a COCO ground-truth file (any shape `vmt.formats.json_records.read_document` reads).

    Broken annotations are reported, not raised. Crowd annotations (``iscrowd: 1``) are kept as
    ignore regions (``Box.crowd``), and each annotation's ``area`` (when given) is kept for the
    size ranges (``Box.given_area``), as pycocotools uses them.
    """
    doc = read_document(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise InputError(f"{path} is not a COCO ground-truth file (no 'images' list)")
    categories: dict[CocoId, str] = {}
    for cat in _section(doc, "categories", path):
        cat_id = _coco_id(cat.get("id")) if isinstance(cat, dict) else None
        if cat_id is not None:
            categories[cat_id] = str(cat.get("name", cat_id))
    rejections: list[Rejection] = []
    boxes: dict[CocoId, list[Box]] = {}
    for n, ann in enumerate(_section(doc, "annotations", path), 1):
        where = f"annotation #{n}"
        if not isinstance(ann, dict):
            rejections.append(Rejection(Reason.MALFORMED_ANNOTATION, None, None, where))
            continue
        image_id, cat_id = _coco_id(ann.get("image_id")), _coco_id(ann.get("category_id"))
        bbox = _bbox(ann.get("bbox"))
        if image_id is None or bbox is None:
            detail = f"{where}: needs an image_id and a bbox [x, y, w, h] (w, h >= 0)"
            if image_id is None and "image_id" in ann:
                detail = f"{where}: {_id_problem('image_id', ann['image_id'])}"
            rejections.append(Rejection(Reason.MALFORMED_ANNOTATION, None, None, detail))
            continue
        if cat_id is None or cat_id not in categories:
            raw = ann.get("category_id")
            problem = _id_problem("category_id", raw) if cat_id is None else ""
            detail = f"{where}: " + (problem or f"unknown category_id {raw!r:.80}")
            rejections.append(Rejection(Reason.UNKNOWN_CLASS, None, str(image_id), detail))
            continue
        x, y, w, h = bbox
        boxes.setdefault(image_id, []).append(
            Box(
                categories[cat_id],
                x,
                y,
                x + w,
                y + h,
                w,
                h,
                crowd=bool(ann.get("iscrowd")),
                given_area=_number(ann.get("area")),
            )
        )
    samples: list[tuple[CocoId, Sample]] = []
    seen: set[CocoId] = set()
    for img in doc["images"]:
        image_id = _coco_id(img.get("id")) if isinstance(img, dict) else None
        if image_id is None or image_id in seen:
            detail = f"image entry {img!r:.80}"
            if isinstance(img, dict) and image_id is None and img.get("id") is not None:
                detail = f"image entry: {_id_problem('id', img['id'])}"
            rejections.append(Rejection(Reason.MALFORMED_IMAGE, None, None, detail))
            continue
        seen.add(image_id)
        name = str(img.get("file_name") or image_id)
        width, height = img.get("width"), img.get("height")
        samples.append(
            (
                image_id,
                Sample(
                    data_row_id=str(image_id),
                    image_uri=name,
                    width=_int_size(width),
                    height=_int_size(height),
                    split=Split.UNASSIGNED,
                    boxes=tuple(boxes.pop(image_id, ())),
                    global_key=name,
                ),
            )
        )
    for image_id, lost in boxes.items():
        detail = f"{len(lost)} annotations of image_id {image_id}, which is not in 'images'"
        rejections.append(Rejection(Reason.UNKNOWN_IMAGE, None, str(image_id), detail))
    samples.sort(key=lambda entry: _order(entry[0]))
    zero = zero_id_warning(_section(doc, "annotations", path))
    return CocoGroundTruth(
        samples=[sample for _, sample in samples],
        categories=categories,
        rejections=rejections,
        warnings=[] if zero is None else [zero],
    )


def zero_id_warning(annotations: list[Any]) -> Rejection | None:
    """An ``annotation_id_zero`` warning when an annotation that is not a crowd region has id
    0 (as several exporters number them), else None.

    vmt scores such a box by the COCO rule, as any other. pycocotools (2.0.x,
    ``COCOeval.evaluateImg``) records a detection's match as the annotation id in ``dtm``, where
    0 means "no match": a detection matched to annotation 0 counts as a false positive (or is
    ignored when outside the area range) while the box, taken, counts as missed, so its AP and
    AR on such a file are lower. A crowd region is an ignore region either way."""
    zero = [
        ann
        for ann in annotations
        if isinstance(ann, dict)
        and type(ann.get("id")) in (int, float)
        and ann["id"] == 0
        and not ann.get("iscrowd")
    ]
    if not zero:
        return None
    image_id = zero[0].get("image_id")
    detail = (
        f"{len(zero)} annotation(s) with id 0 (image_id {image_id!r:.40}): scored here as any "
        "other box (the COCO rule); pycocotools takes annotation id 0 for 'no match', so it "
        "would count a detection matched to it as a false positive and the box as missed "
        "(lower AP/AR). Number annotation ids from 1 to get the same numbers from both"
    )
    return Rejection(Reason.ANNOTATION_ID_ZERO, None, str(image_id), detail, {"count": len(zero)})


def read_results(
    path: Path, *, categories: Mapping[CocoId, str], known: KnownRows | None = None
) -> PredictionsRead:
    """Read COCO results (``[{image_id, category_id, bbox, score}]``; a JSON array or any other
    shape `vmt.formats.json_records` reads, streamed).

    Needs the ground truth's categories (ids -> names); image ids are data row ids. Line numbers
    are where each result starts in the file.
    """
    builder = DetectionTableBuilder(known)
    for n, (line, res) in enumerate(read_records(path), 1):
        where = f"result #{n}"
        if type(res) is Malformed:
            builder.reject(Reason.MALFORMED_JSON, line, None, f"{where}: not JSON ({res.detail})")
            continue
        if not isinstance(res, dict):
            builder.reject(Reason.MALFORMED_ROW, line, None, f"{where}: not an object")
            continue
        raw_image, raw_cat = res.get("image_id"), res.get("category_id")
        image_id, cat_id = _coco_id(raw_image), _coco_id(raw_cat)
        bbox = _bbox(res.get("bbox"))
        if image_id is None:
            detail = f"{where}: {_id_problem('image_id', raw_image)}"
            builder.reject(Reason.MALFORMED_ROW, line, None, detail)
            continue
        if bbox is None:
            detail = (
                f"{where}: bbox {res.get('bbox')!r:.80} is not [x, y, w, h] (finite, w, h >= 0)"
            )
            builder.reject(Reason.MALFORMED_ROW, line, str(image_id), detail)
            continue
        score = _number(res.get("score"))
        if score is None:
            raw_score = res.get("score")
            problem = (
                "no score"
                if raw_score is None
                else f"score {raw_score!r:.40} is not a finite number"
            )
            builder.reject(Reason.INVALID_CONFIDENCE, line, str(image_id), f"{where}: {problem}")
            continue
        name = categories.get(cat_id) if cat_id is not None else None
        if name is None:
            problem = _id_problem("category_id", raw_cat) if cat_id is None else ""
            detail = f"{where}: " + (problem or f"unknown category_id {raw_cat!r:.80}")
            builder.reject(Reason.UNKNOWN_CLASS, line, str(image_id), detail)
            continue
        row_id = builder.resolve_row(line, str(image_id))
        if row_id is None:
            continue
        x, y, w, h = bbox
        builder.add_xywh(line, row_id, name, (x, y, w, h), score)
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
            w, h = box.width, box.height
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
            "bbox": [d.box.x0, d.box.y0, d.box.width, d.box.height],
            "score": d.score,
        }
        for p in predictions
        for d in p.detections
    ]
