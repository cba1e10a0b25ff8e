"""Every field case (tests/field/cases, copied from the shared field cases; README there) gives
its right value: the command as a user runs it, in a subprocess, and the value it must print or
write. COCO values are also checked live against pycocotools on the same files."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.builders.detection_sets import STATS_KEYS, pycocotools_file_stats
from tests.conftest import VMT, cli_env

CASES = Path(__file__).parent / "cases"


@dataclass(frozen=True)
class Ran:
    result: subprocess.CompletedProcess[str]
    out: Path

    def json(self, name: str) -> Any:
        return json.loads((self.out / name).read_text())

    def lines(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.out / name).read_text().splitlines()]


def vmt(out: Path, *args: str, cwd: Path | None = None) -> Ran:
    """``vmt ARGS`` (in ``cwd``); ``{out}`` in an argument is the output folder."""
    out.mkdir(parents=True, exist_ok=True)
    argv = [a.replace("{out}", str(out)) for a in args]
    result = subprocess.run(
        [*VMT, *argv],
        capture_output=True,
        text=True,
        env=cli_env(COLUMNS="400"),
        timeout=120,
        cwd=cwd,
    )
    return Ran(result, out)


def as_written(case: str, tmp: Path, command: str) -> Ran:
    """``command``, word for word as the README's row writes it, in a copy of the case folder
    (the output folder too: relative outputs land there)."""
    folder = tmp / case
    shutil.copytree(CASES / case, folder)
    program, *args = command.split()
    assert program == "vmt"
    return vmt(folder, *args, cwd=folder)


def ok(ran: Ran) -> Ran:
    assert ran.result.returncode == 0, ran.result.stderr
    return ran


def evaluate(case: str, out: Path, gt: str, pred: str, *extra: str) -> dict[str, Any]:
    ran = ok(
        vmt(out, "evaluate", "--ground-truth", str(CASES / case / gt), "--predictions",
            str(CASES / case / pred), "-o", "{out}/metrics.json", *extra)
    )  # fmt: skip
    metrics: dict[str, Any] = ran.json("metrics.json")
    return metrics


# --- the cases ------------------------------------------------------------------------------
def case_01_v1_json_array(tmp: Path) -> None:
    export = str(CASES / "01-v1-json-array/export_v1.json")
    ran = ok(
        vmt(tmp, "convert", export, "-o", "{out}/out.jsonl", "--image-uri-prefix", "gs://b/i/")
    )
    assert len(ran.lines("out.jsonl")) == 3
    m = evaluate("01-v1-json-array", tmp, "export_v1.json", "predictions.ndjson", "--splits", "all")
    assert (m["counts"]["images"], m["counts"]["ground_truth_boxes"]) == (3, 4)
    assert m["inputs"]["ground_truth"]["rows_rejected"] == 0


def case_02_mime_image_jpg(tmp: Path) -> None:
    # A project export has no splits: they are assigned by auto, and the summary says so.
    ran = ok(
        as_written(
            "02-mime-image-jpg",
            tmp,
            "vmt convert export.ndjson -o out.jsonl --image-uri-prefix gs://bucket/images/",
        )
    )
    assert [line["imageGcsUri"] for line in ran.lines("out.jsonl")] == [
        "gs://bucket/images/drjpg00000000000000000001.jpg",
        "gs://bucket/images/drjpg00000000000000000002.jpg",
    ]
    assert "no row has a split (a project export)" in ran.result.stdout
    assert "--unassigned auto" in ran.result.stdout


def case_03_box_under_8px(tmp: Path) -> None:
    export = str(CASES / "03-box-under-8px/export.ndjson")
    ran = ok(vmt(tmp, "convert", export, "-o", "{out}/out.jsonl", "--report", "{out}/rep.json"))
    report = ran.json("rep.json")
    assert report["warnings"] == {"box_too_small": 1}
    assert "8 x 8 px" in report["examples"]["box_too_small"][0]["detail"]
    [line] = ran.lines("out.jsonl")
    assert len(line["boundingBoxAnnotations"]) == 1


def case_04_utf8_bom(tmp: Path) -> None:
    export = str(CASES / "04-utf8-bom/export.ndjson")
    ran = ok(
        vmt(tmp, "convert", export, "-o", "{out}/out.jsonl", "--image-uri-prefix", "gs://b/i/")
    )
    assert len(ran.lines("out.jsonl")) == 2
    m = evaluate("04-utf8-bom", tmp, "export.ndjson", "predictions.ndjson", "--splits", "all")
    assert m["counts"]["images"] == 2
    assert m["counts"]["predictions"] == 2 and m["ignored_predictions"]["total"] == 0
    assert m["inputs"]["ground_truth"]["rows_rejected"] == 0


def coco_case(case: str, tmp: Path, results: str = "results.json") -> dict[str, Any]:
    """``vmt evaluate --ground-truth gt.json --predictions RESULTS`` with no format flag (the
    formats are found from the content), checked against pycocotools on the same files."""
    m = evaluate(case, tmp, "gt.json", results)
    assert m["inputs"]["ground_truth"]["format"] == "coco"
    assert m["inputs"]["predictions"]["format"] == "coco"
    theirs = pycocotools_file_stats(CASES / case / "gt.json", CASES / case / results)
    ours = [m[k] if m[k] is not None else -1.0 for k in STATS_KEYS]
    assert ours == pytest.approx(theirs, abs=1e-9)
    return m


def case_06_coco_crowd(tmp: Path) -> None:
    m = coco_case("06-coco-crowd", tmp)
    assert (m["map"], m["map_50"], m["mar_100"]) == pytest.approx((1.0, 1.0, 1.0), abs=1e-9)


def case_11_empty_predictions(tmp: Path) -> None:
    m = evaluate("11-empty-predictions", tmp, "export.ndjson", "predictions.ndjson")
    assert m["map"] == 0.0
    counts = m["counts"]
    assert (counts["images"], counts["ground_truth_boxes"], counts["predictions"]) == (2, 2, 0)


def case_12_vertex_failed_instance(tmp: Path) -> None:
    for output in ("batch_output", "batch_output_errors_file"):
        command = f"vmt evaluate --ground-truth export.ndjson --predictions {output}"
        ran = ok(as_written("12-vertex-failed-instance", tmp / output, command))
        assert "wrote metrics.json" in ran.result.stdout  # no -o: metrics.json, here
        m = ran.json("metrics.json")
        assert m["map"] == pytest.approx(1.0, abs=1e-9)
        assert m["counts"]["images"] == 1
        failed = m["ignored_predictions"]["by_reason"]["prediction_failed"]
        assert failed["count"] == 1
        assert "gs://bucket/dock/dock-002.jpg" in failed["examples"][0]
        assert "The image could not be decoded." in failed["examples"][0]


def case_17_coco_tied_scores(tmp: Path) -> None:
    m = coco_case("17-coco-tied-scores", tmp)
    assert m["map"] == pytest.approx(1.0, abs=1e-9)


def case_19_no_boxes_anywhere(tmp: Path) -> None:
    export = str(CASES / "19-no-boxes-anywhere/export.ndjson")
    ran = vmt(tmp, "convert", export, "-o", "{out}/out.jsonl", "--image-uri-prefix", "gs://b/i/")
    assert ran.result.returncode == 1
    assert "no row has a bounding box" in ran.result.stderr
    assert "--unassigned" not in ran.result.stderr
    assert not (tmp / "out.jsonl").exists()


def case_22_coco_nan_score(tmp: Path) -> None:
    m = coco_case("22-coco-nan-score", tmp)
    assert (m["map"], m["map_50"], m["mar_100"]) == pytest.approx(
        (0.783911, 0.834158, 0.966667), abs=1e-6
    )
    assert m["counts"]["predictions"] == 4
    nan = m["ignored_predictions"]["by_reason"]["invalid_confidence"]
    assert nan["count"] == 1 and nan["lines"] == [1]
    assert "result #5" in nan["examples"][0] and "nan is not a finite number" in nan["examples"][0]


def case_23_coco_float_ids(tmp: Path) -> None:
    for results in ("results.json", "results_int_ids.json"):
        m = coco_case("23-coco-float-ids", tmp / results, results)
        assert (m["map"], m["map_50"]) == pytest.approx((0.676073, 0.750825), abs=1e-6)
        per_class = {name: c["ap"] for name, c in m["per_class"].items()}
        assert per_class == pytest.approx({"car": 0.768317, "truck": 0.583828}, abs=1e-6)
        assert m["counts"]["predictions"] == 6 and m["ignored_predictions"]["total"] == 0
    # a non-integral id is refused, saying which field is not an integer
    rows = json.loads((CASES / "23-coco-float-ids/results.json").read_text())
    rows[0]["image_id"] = 1.5
    (tmp / "results_1.5.json").write_text(json.dumps(rows))
    ran = ok(
        vmt(tmp, "evaluate", "--ground-truth", str(CASES / "23-coco-float-ids/gt.json"),
            "--predictions", "{out}/results_1.5.json", "-o", "{out}/m.json")
    )  # fmt: skip
    malformed = ran.json("m.json")["ignored_predictions"]["by_reason"]["malformed_row"]
    assert malformed["count"] == 1
    assert "image_id 1.5 is not an integer" in malformed["examples"][0]


def case_27_project_export_unlabelled_row(tmp: Path) -> None:
    m = evaluate("27-project-export-unlabelled-row", tmp, "export.ndjson", "predictions.ndjson")
    assert (m["map"], m["mar_100"]) == pytest.approx((1.0, 1.0), abs=1e-9)
    assert m["counts"]["images"] == 3  # the row labelled with no objects stays an image
    gt = m["inputs"]["ground_truth"]
    unlabelled = gt["rejections"]["unlabelled_row"]
    assert unlabelled["count"] == 1 and unlabelled["lines"] == [3]
    assert "cldr00000000000000000003" in unlabelled["examples"][0]
    on_unlabelled = m["ignored_predictions"]["by_reason"]["on_unlabelled_row"]
    assert on_unlabelled["count"] == 1 and on_unlabelled["lines"] == [3]


def case_29_gcs_https_row_data(tmp: Path) -> None:
    export = str(CASES / "29-gcs-https-row-data/export.ndjson")
    ran = ok(vmt(tmp, "convert", export, "-o", "{out}/out.jsonl"))
    assert [line["imageGcsUri"] for line in ran.lines("out.jsonl")] == [
        "gs://labelbox-sample-datasets/Docs/basic.jpg",
        "gs://lb-yard/site A/frame_0002.jpg",
        "gs://lb-yard/site A/frame_0003.jpg",
    ]
    assert "not_in_gcs" not in ran.result.stdout + ran.result.stderr


FIELD_CASES: dict[str, Callable[[Path], None]] = {
    "01-v1-json-array": case_01_v1_json_array,
    "02-mime-image-jpg": case_02_mime_image_jpg,
    "03-box-under-8px": case_03_box_under_8px,
    "04-utf8-bom": case_04_utf8_bom,
    "06-coco-crowd": case_06_coco_crowd,
    "11-empty-predictions": case_11_empty_predictions,
    "12-vertex-failed-instance": case_12_vertex_failed_instance,
    "17-coco-tied-scores": case_17_coco_tied_scores,
    "19-no-boxes-anywhere": case_19_no_boxes_anywhere,
    "22-coco-nan-score": case_22_coco_nan_score,
    "23-coco-float-ids": case_23_coco_float_ids,
    "27-project-export-unlabelled-row": case_27_project_export_unlabelled_row,
    "29-gcs-https-row-data": case_29_gcs_https_row_data,
}
NOT_YET: dict[str, str] = {}
"""Cases another branch fixes: strict xfail, so the merge that fixes one must flip it here."""


def test_every_case_folder_has_a_row() -> None:
    folders = {p.name for p in CASES.iterdir() if p.is_dir()}
    assert folders == set(FIELD_CASES)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, marks=pytest.mark.xfail(strict=True, reason=NOT_YET[case]))
        if case in NOT_YET
        else case
        for case in sorted(FIELD_CASES)
    ],
)
def test_field_case(case: str, tmp_path: Path) -> None:
    FIELD_CASES[case](tmp_path)
