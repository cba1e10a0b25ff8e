"""`vmt evaluate --fail-under` / `--json` in a subprocess: the CI gate as a pipeline sees it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from tests.builders.detection_sets import random_dataset
from tests.conftest import VMT, cli_env
from vmt.formats.coco import ground_truth_document, results_document
from vmt.quality_gate import GATE_FAILED_EXIT_CODE


@pytest.fixture(scope="module")
def coco_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, object]]:
    tmp = tmp_path_factory.mktemp("gate")
    samples, predictions, classes = random_dataset(4, images=25)
    gt = tmp / "gt.json"
    gt.write_bytes(orjson.dumps(ground_truth_document(samples, classes)))
    image_ids = {s.data_row_id: i for i, s in enumerate(samples, 1)}
    category_ids = {name: k for k, name in enumerate(classes, 1)}
    res = tmp / "res.json"
    res.write_bytes(
        orjson.dumps(results_document(predictions, image_ids=image_ids, category_ids=category_ids))
    )
    first = evaluate(gt, res, tmp / "m.json", "--json")
    assert first.returncode == 0, first.stderr
    return gt, res, orjson.loads(first.stdout)


def evaluate(gt: Path, res: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VMT, "evaluate", "--gt", str(gt), "--pred", str(res), "-o", str(out), *args],
        capture_output=True,
        text=True,
        env=cli_env(COLUMNS="200"),
    )


def test_json_summary_is_the_metrics_file(
    coco_files: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    gt, res, summary = coco_files
    out = evaluate(gt, res, tmp_path / "m.json", "--json")
    metrics = orjson.loads((tmp_path / "m.json").read_bytes())
    again = orjson.loads(out.stdout)
    assert again["metrics"] == summary["metrics"]
    assert again["written"] == [str(tmp_path / "m.json")]
    assert summary["metrics"]["map_50"] == metrics["map_50"]  # type: ignore[index]
    assert set(summary["per_class"]) == set(metrics["per_class"])  # type: ignore[arg-type]
    assert summary["gate"] is None


def test_gate_passes_below_the_figure(
    coco_files: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    gt, res, summary = coco_files
    map_50 = summary["metrics"]["map_50"]  # type: ignore[index]
    out = evaluate(gt, res, tmp_path / "m.json", "--fail-under", f"map_50={map_50 - 0.01}")
    assert out.returncode == 0, out.stderr
    assert "quality gate passed: map_50" in out.stderr


def test_gate_fails_with_its_own_exit_code_and_one_line(
    coco_files: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    gt, res, summary = coco_files
    map_50 = summary["metrics"]["map_50"]  # type: ignore[index]
    out = evaluate(
        gt,
        res,
        tmp_path / "m.json",
        "--json",
        "--fail-under",
        f"map_50={map_50 + 0.01}",
        "--fail-under",
        "ap_50:c0=0",
    )
    assert out.returncode == GATE_FAILED_EXIT_CODE
    lines = [line for line in out.stderr.splitlines() if "quality gate" in line]
    assert len(lines) == 1
    assert lines[0].startswith("quality gate failed: map_50 ")
    assert "ap_50:c0" not in lines[0]  # that one passed
    gate = orjson.loads(out.stdout)["gate"]
    assert gate["passed"] is False
    assert [c["passed"] for c in gate["checks"]] == [False, True]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("map_50", "expected METRIC=VALUE"),
        ("map50=0.5", "unknown metric 'map50'"),
        ("map_50=high", "is not a number"),
        ("size:car=0.5", "FIGURE:CLASS"),
    ],
)
def test_bad_thresholds_are_usage_errors_before_any_work(
    coco_files: tuple[Path, Path, dict[str, object]], tmp_path: Path, value: str, message: str
) -> None:
    gt, res, _ = coco_files
    out = evaluate(gt, res, tmp_path / "m.json", "--fail-under", value)
    assert out.returncode == 2
    assert message in out.stderr
    assert not (tmp_path / "m.json").exists()
