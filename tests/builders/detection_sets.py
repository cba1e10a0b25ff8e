"""Random datasets for the pycocotools oracle tests, and pycocotools run on them."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from vmt.domain import Box, Detection, Prediction, Sample, Split


def random_dataset(
    seed: int,
    *,
    images: int = 40,
    classes: int = 4,
    integer_boxes: bool = False,
) -> tuple[list[Sample], list[Prediction], list[str]]:
    """Samples and predictions covering the awkward cases.

    Empty images, images with only predictions, a class only predicted (``only_pred``), a class
    never predicted, > 100 detections of one class in an image, boxes touching the border, tied
    scores, tiny/huge boxes (all three area ranges), jittered copies of ground truth.
    """
    rng = np.random.default_rng(seed)
    names = [f"c{k}" for k in range(classes)]
    never_predicted = names[-1]
    only_predicted = "only_pred"
    samples: list[Sample] = []
    predictions: list[Prediction] = []
    for i in range(images):
        width, height = int(rng.integers(50, 700)), int(rng.integers(50, 700))
        kind = rng.random()
        n_gt = 0 if (kind < 0.1 or i == 0) else int(rng.poisson(4))
        boxes: list[Box] = []
        for _ in range(n_gt):
            boxes.append(
                _random_box(rng, names[int(rng.integers(classes))], width, height, integer_boxes)
            )
        samples.append(
            Sample(f"row{i:04d}", f"img{i}.jpg", width, height, Split.TEST, tuple(boxes))
        )
        dets: list[Detection] = []
        if kind < 0.05 and i != 1:
            predictions.append(Prediction(f"row{i:04d}", ()))
            continue
        for box in boxes:
            if box.label == never_predicted or rng.random() < 0.2:
                continue
            for _ in range(int(rng.integers(1, 3))):
                label = box.label if rng.random() > 0.15 else names[int(rng.integers(classes - 1))]
                jit = [
                    float(v) for v in rng.normal(0, 0.12, 4) * np.array([box.width, box.height] * 2)
                ]
                x0, y0 = box.x0 + jit[0], box.y0 + jit[1]
                x1, y1 = max(x0 + 1, box.x1 + jit[2]), max(y0 + 1, box.y1 + jit[3])
                if integer_boxes:
                    x0, y0, x1, y1 = (float(round(v)) for v in (x0, y0, x1, y1))
                    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
                dets.append(Detection(Box(label, x0, y0, x1, y1), _score(rng)))
        for _ in range(int(rng.poisson(3))):
            label = names[int(rng.integers(classes - 1))] if rng.random() > 0.1 else only_predicted
            dets.append(
                Detection(_random_box(rng, label, width, height, integer_boxes), _score(rng))
            )
        if i == 1 or rng.random() < 0.08:  # a flood: > 100 detections of one class
            label = names[0]
            for _ in range(int(rng.integers(101, 160))):
                dets.append(
                    Detection(_random_box(rng, label, width, height, integer_boxes), _score(rng))
                )
        order = rng.permutation(len(dets))
        dets = [dets[j] for j in order]
        # split one row's detections over two Prediction pieces (one per file line)
        cut = len(dets) // 2
        predictions.append(Prediction(f"row{i:04d}", tuple(dets[:cut])))
        predictions.append(Prediction(f"row{i:04d}", tuple(dets[cut:])))
    return samples, predictions, sorted({*names, only_predicted})


def _score(rng: np.random.Generator) -> float:
    # a coarse grid makes ties (across and within images) frequent
    return float(rng.integers(0, 21)) / 20 if rng.random() < 0.5 else float(rng.random())


def _random_box(
    rng: np.random.Generator, label: str, width: int, height: int, integer: bool
) -> Box:
    scale = rng.choice([6.0, 20.0, 60.0, 200.0])
    w = max(1.0, float(rng.exponential(scale)))
    h = max(1.0, float(rng.exponential(scale)))
    w, h = min(w, width), min(h, height)
    if rng.random() < 0.15:  # at a border
        x0 = 0.0 if rng.random() < 0.5 else width - w
        y0 = 0.0 if rng.random() < 0.5 else height - h
    else:
        x0 = float(rng.uniform(0, width - w))
        y0 = float(rng.uniform(0, height - h))
    if integer:
        x0, y0, w, h = (
            float(round(x0)),
            float(round(y0)),
            float(max(1, round(w))),
            float(max(1, round(h))),
        )
    return Box(label, x0, y0, x0 + w, y0 + h)


STATS_KEYS = (
    "map", "map_50", "map_75", "map_small", "map_medium", "map_large",
    "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large",
)  # fmt: skip
"""Our names of pycocotools' twelve ``stats``, in its order."""


def pycocotools_file_stats(gt: Path, results: Path) -> list[float]:
    """pycocotools' twelve ``stats`` computed on COCO files as they are."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt))
        ev = COCOeval(coco_gt, coco_gt.loadRes(str(results)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(v) for v in ev.stats]


def pycocotools_eval(
    samples: list[Sample], predictions: list[Prediction], classes: list[str]
) -> tuple[np.ndarray, dict[str, float], object]:
    """pycocotools on the same data: (stats, per-class AP, the COCOeval)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    cat_id = {name: k + 1 for k, name in enumerate(classes)}
    img_id = {s.data_row_id: i + 1 for i, s in enumerate(samples)}
    anns = []
    for s in samples:
        for b in s.boxes:
            w, h = b.width, b.height
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img_id[s.data_row_id],
                    "category_id": cat_id[b.label],
                    "bbox": [b.x0, b.y0, w, h],
                    "area": b.area,
                    "iscrowd": int(b.crowd),
                }
            )
    gt = COCO()
    gt.dataset = {
        "images": [
            {"id": img_id[s.data_row_id], "width": s.width, "height": s.height} for s in samples
        ],
        "annotations": anns,
        "categories": [{"id": v, "name": k} for k, v in cat_id.items()],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        results = [
            {
                "image_id": img_id[p.data_row_id],
                "category_id": cat_id[d.box.label],
                "bbox": [d.box.x0, d.box.y0, d.box.width, d.box.height],
                "score": d.score,
            }
            for p in predictions
            for d in p.detections
        ]
        dt = gt.loadRes(results) if results else COCO()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per_class: dict[str, float] = {}
    prec = ev.eval["precision"]
    for k, name in enumerate(classes):
        s = prec[:, :, k, 0, -1]
        per_class[name] = float(np.mean(s[s > -1])) if (s > -1).any() else -1.0
    return np.asarray(ev.stats), per_class, ev
