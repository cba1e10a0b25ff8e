"""`vmt evaluate` end to end in a subprocess: Labelbox files, COCO files, broken inputs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from tests.builders.detection_sets import pycocotools_eval, random_dataset
from tests.builders.labelbox_rows import box_object, model_run_row
from tests.conftest import VMT, cli_env
from vmt.formats.coco import ground_truth_document, results_document


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VMT, "evaluate", *map(str, args)],
        capture_output=True,
        text=True,
        env=cli_env(COLUMNS="400"),  # rich wraps at 80 columns otherwise
        cwd=cwd,
    )


def pred(row_id: str, name: str, left: float, top: float, w: float, h: float, conf: float) -> bytes:
    row = {
        "uuid": f"{row_id}-{left}",
        "dataRow": {"id": row_id},
        "name": name,
        "bbox": {"top": top, "left": left, "height": h, "width": w},
        "confidence": conf,
    }
    return orjson.dumps(row)


@pytest.fixture
def labelbox_files(tmp_path: Path) -> tuple[Path, Path]:
    rows = [
        model_run_row("r1", split="test", objects=[box_object("car", 10.0, 10.0, 100.0, 50.0)]),
        model_run_row("r2", split="validation", objects=[box_object("dog", 200.0, 200.0, 80.0)]),
        model_run_row("r3", split="training", objects=[box_object("cat", 5.0, 5.0, 50.0, 50.0)]),
        model_run_row("r4", split="test", objects=[]),  # evaluated, nothing to find
    ]  # fmt: skip
    export = tmp_path / "export.ndjson"
    export.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    lines = [
        pred("r1", "car", 10.0, 10.0, 100.0, 50.0, 0.9),  # 1: true positive
        pred("r2", "dog", 0.0, 0.0, 30.0, 30.0, 0.8),  # 2: false positive (+ r2's dog missed)
        b'{"dataRow": {"id": "r1"}, "name": ',  # 3: malformed
        pred("nope", "car", 1.0, 1.0, 5.0, 5.0, 0.5),  # 4: unknown data row
        pred("r1", "zebra", 1.0, 1.0, 5.0, 5.0, 0.5),  # 5: unknown class
        pred("r3", "cat", 5.0, 5.0, 50.0, 50.0, 0.9),  # 6: a training row, not evaluated
        pred("r4", "car", 300.0, 300.0, 20.0, 20.0, 0.7),  # 7: false positive on an empty row
    ]
    predictions = tmp_path / "predictions.ndjson"
    predictions.write_bytes(b"\n".join(lines) + b"\n")
    return export, predictions


def test_labelbox_files_end_to_end(labelbox_files: tuple[Path, Path], tmp_path: Path) -> None:
    export, predictions = labelbox_files
    out = run(
        "--ground-truth", export, "--predictions", predictions, "-o", tmp_path / "m.json",
        "--html", tmp_path / "r.html", "--row-metrics", tmp_path / "rm.ndjson",
        "--confidence", "0.5",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    metrics = orjson.loads((tmp_path / "m.json").read_bytes())
    # validation + test rows only (the default when the export has splits)
    assert metrics["counts"]["images"] == 3
    assert metrics["inputs"]["ground_truth"]["splits"] == ["validation", "test"]
    assert metrics["counts"]["predictions"] == 3
    by_reason = metrics["ignored_predictions"]["by_reason"]
    assert {k: (v["count"], v["lines"]) for k, v in by_reason.items()} == {
        "malformed_json": (1, [3]),
        "unknown_data_row": (1, [4]),
        "unknown_class": (1, [5]),
        "row_not_in_evaluated_splits": (1, [6]),
    }
    assert metrics["ignored_predictions"]["total"] == 4
    assert metrics["per_class"]["car"]["ap"] == pytest.approx(1.0)
    assert metrics["per_class"]["dog"]["ap"] == 0.0
    worst = metrics["per_row"][0]
    assert (worst["data_row_id"], worst["fp"], worst["fn"]) == ("r2", 1, 1)
    # the terminal summary: the table and what was ignored, with line numbers
    assert "mAP" in out.stdout and "car" in out.stdout
    assert "malformed_json: 1 (lines 3)" in out.stdout
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!doctype html>")
    assert (tmp_path / "rm.ndjson").read_bytes().count(b"\n") > 0


def test_all_splits_and_fixed_confidence(labelbox_files: tuple[Path, Path], tmp_path: Path) -> None:
    export, predictions = labelbox_files
    out = run(
        "--gt", export, "--pred", predictions, "-o", tmp_path / "m.json",
        "--splits", "all", "--confidence", "0.85", "--iou", "0.6",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    metrics = orjson.loads((tmp_path / "m.json").read_bytes())
    assert metrics["counts"]["images"] == 4
    assert metrics["confidence_threshold"] == 0.85
    assert metrics["confidence_source"] == "given"
    assert metrics["iou_threshold"] == 0.6
    # at 0.85 only the two 0.9 boxes count; the cat on r3 is now evaluated and found
    assert sum(r["tp"] for r in metrics["per_row"]) == 2


def test_coco_files_match_pycocotools(tmp_path: Path) -> None:
    samples, predictions, classes = random_dataset(4, images=25)
    gt = tmp_path / "gt.json"
    gt.write_bytes(orjson.dumps(ground_truth_document(samples, classes)))
    image_ids = {s.data_row_id: i for i, s in enumerate(samples, 1)}
    category_ids = {name: k for k, name in enumerate(classes, 1)}
    res = tmp_path / "res.json"
    res.write_bytes(
        orjson.dumps(results_document(predictions, image_ids=image_ids, category_ids=category_ids))
    )
    out = run("--ground-truth", gt, "--predictions", res, "-o", tmp_path / "m.json")
    assert out.returncode == 0, out.stderr
    metrics = orjson.loads((tmp_path / "m.json").read_bytes())
    stats, _, _ = pycocotools_eval(samples, predictions, classes)
    keys = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large",
            "mar_1", "mar_10", "mar_100")  # fmt: skip
    for key, theirs in zip(keys, stats, strict=False):
        ours = metrics[key] if metrics[key] is not None else -1.0
        assert ours == pytest.approx(theirs, abs=1e-9), key


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ground-truth", "missing.ndjson"], "cannot read"),
        (["--gt-format", "yaml"], "unknown ground-truth format"),
        (["--splits", "holdout"], "unknown split"),
        (["--splits", "training,unassigned", "--pred-format", "coco"], "COCO ground truth"),
    ],
)
def test_user_errors_are_one_line(
    labelbox_files: tuple[Path, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    export, predictions = labelbox_files
    base = {"--ground-truth": str(export), "--predictions": str(predictions)}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = str(tmp_path / value) if value.endswith(".ndjson") else value
    flat = [x for kv in base.items() for x in kv]
    out = run(*flat, "-o", tmp_path / "m.json")
    assert out.returncode == 1
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_without_o_metrics_json_is_written_in_the_current_folder(
    labelbox_files: tuple[Path, Path], tmp_path: Path
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    export, predictions = labelbox_files
    out = run("--ground-truth", export, "--predictions", predictions, cwd=here)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "wrote metrics.json"
    assert orjson.loads((here / "metrics.json").read_bytes())["counts"]["images"] == 3


def test_the_output_never_overwrites_an_input(
    labelbox_files: tuple[Path, Path], tmp_path: Path
) -> None:
    export, predictions = labelbox_files
    before = predictions.read_bytes()
    out = run("--ground-truth", export, "--predictions", predictions, "-o", predictions)
    assert out.returncode == 2 and "would overwrite an input" in out.stderr
    assert predictions.read_bytes() == before


def test_bad_confidence_is_a_usage_error(labelbox_files: tuple[Path, Path], tmp_path: Path) -> None:
    export, predictions = labelbox_files
    out = run("--gt", export, "--pred", predictions, "-o", tmp_path / "m", "--confidence", "high")
    assert out.returncode == 2


def test_small_ground_truth_boxes_are_kept_and_evaluated(tmp_path: Path) -> None:
    # Vertex training drops boxes under 1% of the image side; evaluation must not: a tiny
    # ground-truth object that nobody predicted is a miss, so recall is 1/2, not 1/1.
    tiny = box_object("car", 10.0, 10.0, 2.0, 2.0)  # under 1% of a 1000 px image side
    export = tmp_path / "export.ndjson"
    export.write_bytes(
        orjson.dumps(model_run_row("r1", split="test", objects=[tiny, box_object()])) + b"\n"
    )
    predictions = tmp_path / "p.ndjson"
    predictions.write_bytes(pred("r1", "car", 10.0, 20.0, 30.0, 40.0, 0.9) + b"\n")
    out = run("--gt", export, "--pred", predictions, "-o", tmp_path / "m.json")
    assert out.returncode == 0, out.stderr
    metrics = orjson.loads((tmp_path / "m.json").read_bytes())
    assert metrics["inputs"]["ground_truth"].get("box_warnings", {}) == {}
    assert metrics["per_class"]["car"]["gt_count"] == 2
    assert "box_too_small" not in out.stdout
