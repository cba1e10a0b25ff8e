"""COCO files as users have them (ids not contiguous, not sorted, strings; crowd regions;
``area`` fields; tied scores) read by ``vmt evaluate``'s readers give pycocotools' numbers,
computed live by pycocotools on the same files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from tests.builders.detection_sets import STATS_KEYS, pycocotools_file_stats, random_dataset
from vmt.evaluation import evaluate
from vmt.formats.evaluation_inputs import read_evaluation_files

ID_STYLES = {
    "non-contiguous, shuffled": lambda i: 397133 - 7919 * i,
    "strings": lambda i: f"img-{(i * 37) % 101:03d}",
    "zero-based": lambda i: i,
}


def coco_files(tmp: Path, seed: int, image_id: Any) -> tuple[Path, Path]:
    samples, predictions, classes = random_dataset(seed, images=30)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(samples))  # images listed in no particular order
    ids = {s.data_row_id: image_id(i) for i, s in enumerate(samples)}
    cat = {name: 10 * (k + 1) for k, name in enumerate(classes)}  # non-contiguous categories
    annotations = []
    for s in samples:
        for b in s.boxes:
            w, h = b.x1 - b.x0, b.y1 - b.y0
            ann: dict[str, Any] = {
                "id": len(annotations) + 1, "image_id": ids[s.data_row_id],
                "category_id": cat[b.label], "bbox": [b.x0, b.y0, w, h],
                "iscrowd": int(rng.random() < 0.1),
            }  # fmt: skip
            # pycocotools needs `area` (segmentation areas differ from w * h)
            ann["area"] = w * h * float(rng.choice([0.5, 1.0, 1.0, 3.0]))
            annotations.append(ann)
    gt = {
        "images": [
            {"id": ids[samples[j].data_row_id], "file_name": f"{j}.jpg",
             "width": samples[j].width, "height": samples[j].height}
            for j in order
        ],
        "categories": [{"id": v, "name": k} for k, v in cat.items()],
        "annotations": annotations,
    }  # fmt: skip
    scores = [0.25, 0.5, 0.75, 1.0]  # many ties across images
    results = [
        {"image_id": ids[p.data_row_id], "category_id": cat[d.box.label],
         "bbox": [d.box.x0, d.box.y0, d.box.x1 - d.box.x0, d.box.y1 - d.box.y0],
         "score": scores[int(rng.integers(len(scores)))]}
        for p in predictions for d in p.detections
    ]  # fmt: skip
    gt_path, results_path = tmp / "gt.json", tmp / "results.json"
    gt_path.write_bytes(orjson.dumps(gt, option=orjson.OPT_INDENT_2))
    results_path.write_bytes(orjson.dumps(results))
    return gt_path, results_path


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("style", sorted(ID_STYLES))
def test_coco_files_match_pycocotools(tmp_path: Path, style: str, seed: int) -> None:
    gt, results = coco_files(tmp_path, seed, ID_STYLES[style])
    files = read_evaluation_files(gt, results)
    assert files.ground_truth.format == "coco" and files.prediction_format == "coco"
    ev = evaluate(files.evaluated, files.predictions.table)
    ours = [v if v is not None else -1.0 for v in map(ev.summary.get, STATS_KEYS)]
    assert ours == pytest.approx(pycocotools_file_stats(gt, results), abs=1e-9)
