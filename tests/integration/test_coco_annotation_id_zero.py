"""COCO ground truth whose annotation ids start at 0: `vmt evaluate` reports the COCO rule (the
box is a box like any other) and warns, naming annotation id 0 and what pycocotools does
differently. pycocotools runs live on the same files: its numbers are those of the same data
with the detection matched to annotation 0 turned into a false positive and the box missed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.builders.detection_sets import STATS_KEYS, pycocotools_file_stats
from tests.conftest import VMT, cli_env

IMAGES = [
    {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
    {"id": 2, "file_name": "b.jpg", "width": 640, "height": 480},
]
CATEGORIES = [{"id": 1, "name": "car"}]
BOXES = [(1, [10, 10, 100, 100]), (1, [300, 200, 50, 80]), (2, [20, 30, 200, 100])]
RESULTS = [
    {"image_id": 1, "category_id": 1, "bbox": [12, 11, 100, 98], "score": 0.9},  # on box 0
    {"image_id": 1, "category_id": 1, "bbox": [301, 200, 50, 80], "score": 0.8},
    {"image_id": 2, "category_id": 1, "bbox": [20, 30, 200, 100], "score": 0.7},
]


def _write(folder: Path, first_id: int, results: list[dict[str, Any]]) -> tuple[Path, Path]:
    folder.mkdir()
    annotations = [
        {"id": first_id + k, "image_id": image, "category_id": 1, "bbox": bbox,
         "area": bbox[2] * bbox[3], "iscrowd": 0}
        for k, (image, bbox) in enumerate(BOXES)
    ]  # fmt: skip
    gt = {"images": IMAGES, "categories": CATEGORIES, "annotations": annotations}
    (folder / "gt.json").write_text(json.dumps(gt))
    (folder / "results.json").write_text(json.dumps(results))
    return folder / "gt.json", folder / "results.json"


def _vmt_evaluate(folder: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    result = subprocess.run(
        [*VMT, "evaluate", "--ground-truth", "gt.json", "--predictions", "results.json",
         "-o", "metrics.json"],
        cwd=folder, capture_output=True, text=True, env=cli_env(COLUMNS="400"), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result, json.loads((folder / "metrics.json").read_text())


def _stats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: -1.0 if metrics[k] is None else metrics[k] for k in STATS_KEYS}


def test_annotation_id_zero_is_scored_by_the_coco_rule_and_the_difference_is_said(
    tmp_path: Path,
) -> None:
    zero_gt, zero_results = _write(tmp_path / "from0", 0, RESULTS)
    one_gt, one_results = _write(tmp_path / "from1", 1, RESULTS)
    ran, ours = _vmt_evaluate(tmp_path / "from0")

    # vmt: the COCO rule, which is pycocotools' own number once the ids start at 1.
    rule = dict(zip(STATS_KEYS, pycocotools_file_stats(one_gt, one_results), strict=True))
    assert _stats(ours) == pytest.approx(rule, abs=1e-12)
    assert ours["map_50"] == pytest.approx(1.0)

    # pycocotools on the id-0 file: the detection matched to annotation 0 is a false positive
    # and the box is missed, exactly as if that detection had been elsewhere.
    pycoco = dict(zip(STATS_KEYS, pycocotools_file_stats(zero_gt, zero_results), strict=True))
    assert pycoco["map"] < rule["map"] - 0.1
    moved = [{**RESULTS[0], "bbox": [500, 300, 100, 98]}, *RESULTS[1:]]
    elsewhere_gt, elsewhere_results = _write(tmp_path / "moved", 1, moved)
    as_documented = pycocotools_file_stats(elsewhere_gt, elsewhere_results)
    assert pycoco == pytest.approx(dict(zip(STATS_KEYS, as_documented, strict=True)), abs=1e-12)

    # ...and said loudly: on the terminal and in metrics.json.
    warning = ours["inputs"]["ground_truth"]["warnings"]["annotation_id_zero"]
    assert warning["count"] == 1
    assert "id 0" in warning["examples"][0] and "pycocotools" in warning["examples"][0]
    assert "annotation_id_zero" in ran.stdout and "false positive" in ran.stdout


def test_no_warning_when_ids_start_at_1(tmp_path: Path) -> None:
    _write(tmp_path / "from1", 1, RESULTS)
    ran, ours = _vmt_evaluate(tmp_path / "from1")
    assert ours["inputs"]["ground_truth"]["warnings"] == {}
    assert "annotation_id_zero" not in ran.stdout
