"""Boxes whose width x height is exactly 32^2 or 96^2 (the ends of COCO's size ranges), placed
at left/top offsets where ``(left + width) - left != width`` in floating point: read from
Labelbox files and from COCO files, `vmt evaluate`'s numbers are pycocotools' (all twelve
stats, pycocotools run live on the same boxes as COCO files), because sizes, areas and IoUs
come from the width and height the file gave, never from rebuilt corners."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from tests.builders.detection_sets import STATS_KEYS, pycocotools_file_stats
from vmt.domain import Box
from vmt.evaluation import evaluate
from vmt.formats.evaluation_inputs import read_evaluation_files

EXACT_SIZES = (
    (20.0, 51.2), (25.6, 40.0), (51.2, 20.0), (40.0, 25.6),  # 32^2
    (51.2, 180.0), (57.6, 160.0), (60.0, 153.6), (76.8, 120.0), (80.0, 115.2),
    (90.0, 102.4), (102.4, 90.0), (115.2, 80.0), (120.0, 76.8),  # 96^2
)  # fmt: skip
OFFSETS = (726.4, 333.3, 101.9, 512.3, 47.7, 250.1, 10.7, 0.1)
CLASSES = ("car", "truck")
IMAGE = (1000, 900)


def _boxes(seed: int) -> tuple[list[list[Box]], list[list[tuple[Box, float]]]]:
    """Ground truth and scored detections per image: exact-area boxes at awkward offsets;
    detections that are copies, half-width copies (IoU exactly 0.5), shifted copies, and
    exact-area false positives."""
    rng = np.random.default_rng(seed)
    truth: list[list[Box]] = []
    found: list[list[tuple[Box, float]]] = []
    scores = iter(rng.permutation(10_000) / 10_000 + 1e-5)  # no ties
    for _ in range(24):
        gts, dets = [], []
        for _ in range(int(rng.integers(2, 6))):
            w, h = EXACT_SIZES[int(rng.integers(len(EXACT_SIZES)))]
            left = float(OFFSETS[int(rng.integers(len(OFFSETS)))])
            top = float(OFFSETS[int(rng.integers(len(OFFSETS)))] * 0.7).__round__(1)
            label = CLASSES[int(rng.integers(2))]
            gt = Box.from_ltwh(label, left, top, w, h)
            gts.append(gt)
            kind = int(rng.integers(4))
            if kind == 0:
                dets.append((gt, float(next(scores))))
            elif kind == 1:
                dets.append((Box.from_ltwh(label, left, top, round(w / 2, 2), h), next(scores)))
            elif kind == 2:
                dx = round(float(rng.normal(0, 0.1 * w)), 1)
                dets.append((Box.from_ltwh(label, round(left + dx, 1), top, w, h), next(scores)))
        for _ in range(int(rng.integers(0, 3))):
            w, h = EXACT_SIZES[int(rng.integers(len(EXACT_SIZES)))]
            left = float(OFFSETS[int(rng.integers(len(OFFSETS)))])
            box = Box.from_ltwh(CLASSES[int(rng.integers(2))], left, 600.1, w, h)
            dets.append((box, float(next(scores))))
        truth.append(gts)
        found.append([(b, float(s)) for b, s in dets])
    return truth, found


def _ltwh(box: Box) -> dict[str, float]:
    assert box.given_width is not None and box.given_height is not None
    return {"left": box.x0, "top": box.y0, "width": box.given_width, "height": box.given_height}


def _labelbox_files(
    tmp: Path, truth: list[list[Box]], found: list[list[tuple[Box, float]]]
) -> tuple[Path, Path]:
    rows, preds = [], []
    for i, (gts, dets) in enumerate(zip(truth, found, strict=True)):
        objects = [
            {"feature_id": f"f{i}-{k}", "name": b.label, "annotation_kind": "ImageBoundingBox",
             "bounding_box": _ltwh(b)}
            for k, b in enumerate(gts)
        ]  # fmt: skip
        run = {"name": "r", "split": "test", "predictions": [],
               "labels": [{"id": f"l{i}", "annotations": {"objects": objects}}]}  # fmt: skip
        rows.append({
            "data_row": {"id": f"row{i:03d}", "row_data": f"https://example.invalid/{i}.jpg"},
            "media_attributes": {"width": IMAGE[0], "height": IMAGE[1], "mime_type": "image/jpeg"},
            "experiments": {"m": {"name": "m", "runs": {"r": run}}},
        })  # fmt: skip
        for k, (b, score) in enumerate(dets):
            preds.append({
                "uuid": f"00000000-0000-4000-8000-{i:06d}{k:06d}", "dataRow": {"id": f"row{i:03d}"},
                "name": b.label, "bbox": _ltwh(b), "confidence": score,
            })  # fmt: skip
    export, predictions = tmp / "export.ndjson", tmp / "predictions.ndjson"
    export.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    predictions.write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in preds))
    return export, predictions


def _coco_files(
    tmp: Path, truth: list[list[Box]], found: list[list[tuple[Box, float]]]
) -> tuple[Path, Path]:
    def bbox(b: Box) -> list[float]:
        size = _ltwh(b)
        return [size["left"], size["top"], size["width"], size["height"]]

    annotations: list[dict[str, Any]] = []
    for i, gts in enumerate(truth):
        for b in gts:
            x, y, w, h = bbox(b)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "iscrowd": 0,
                                "category_id": CLASSES.index(b.label) + 1, "bbox": [x, y, w, h],
                                "area": w * h})  # fmt: skip
    gt = {
        "images": [{"id": i + 1, "file_name": f"{i}.jpg", "width": IMAGE[0], "height": IMAGE[1]}
                   for i in range(len(truth))],
        "categories": [{"id": k + 1, "name": name} for k, name in enumerate(CLASSES)],
        "annotations": annotations,
    }  # fmt: skip
    results = [
        {"image_id": i + 1, "category_id": CLASSES.index(b.label) + 1, "bbox": bbox(b), "score": s}
        for i, dets in enumerate(found)
        for b, s in dets
    ]
    gt_path, results_path = tmp / "gt.json", tmp / "results.json"
    gt_path.write_bytes(orjson.dumps(gt))
    results_path.write_bytes(orjson.dumps(results))
    return gt_path, results_path


@pytest.mark.parametrize("seed", range(3))
def test_exact_size_boxes_match_pycocotools_from_labelbox_and_coco(
    tmp_path: Path, seed: int
) -> None:
    truth, found = _boxes(seed)
    assert any((b.x1 - b.x0) * (b.y1 - b.y0) != b.width * b.height for g in truth for b in g)
    gt_coco, results_coco = _coco_files(tmp_path, truth, found)
    referee = pycocotools_file_stats(gt_coco, results_coco)
    for files in (_labelbox_files(tmp_path, truth, found), (gt_coco, results_coco)):
        read = read_evaluation_files(*files)
        ev = evaluate(read.evaluated, read.predictions.table)
        ours = [v if v is not None else -1.0 for v in map(ev.summary.get, STATS_KEYS)]
        assert dict(zip(STATS_KEYS, ours, strict=True)) == pytest.approx(
            dict(zip(STATS_KEYS, referee, strict=True)), abs=1e-12
        ), files[0].name
