"""One ground truth for evaluation: the pipeline's evaluate stage gives the numbers
``vmt evaluate`` gives on the same export and the run's Labelbox predictions file, boxes that
Vertex's filters drop for training included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.builders.labelbox_rows import box_object, model_run_row
from tests.fakes.simple_run_context import SimpleRunContext
from vmt.domain import Box, Detection, Prediction, Sample
from vmt.evaluation import evaluate
from vmt.formats.evaluation_inputs import read_evaluation_files
from vmt.formats.export_options import ExportOptions
from vmt.formats.labelbox_export import read_samples
from vmt.pipeline import artifacts, stages
from vmt.pipeline.artifacts import SampleFile
from vmt.pipeline.results import EvaluateResult, PredictionFailure, PredictResult


def test_evaluate_stage_equals_vmt_evaluate_on_the_same_files(tmp_path: Path) -> None:
    ctx = SimpleRunContext("run-1", tmp_path / "run")
    paths = stages.RunPaths(ctx.workdir)
    rows = [
        model_run_row("t1", split="training", objects=[box_object("car", 10, 10, 200, 100)]),
        # a 6 x 6 px car (under Vertex's 8 px minimum) and a car under 1% of the width
        model_run_row("v1", split="validation", objects=[
            box_object("car", 100, 100, 200, 100), box_object("car", 10, 10, 6, 6),
            box_object("car", 300, 300, 5, 40)]),
        model_run_row("v2", split="test", objects=[box_object("car", 50, 50, 300, 200)]),
        model_run_row("v3", split="test", objects=[]),
    ]  # fmt: skip
    found = [
        Prediction("v1", (Detection(Box("car", 100, 100, 300, 200), 0.9),
                          Detection(Box("car", 10, 10, 16, 16), 0.6))),
        Prediction("v2", (Detection(Box("car", 60, 50, 350, 250), 0.7),)),
        Prediction("v3", (Detection(Box("car", 1, 1, 50, 50), 0.3),)),
    ]  # fmt: skip
    _prepare_and_evaluate(ctx, paths, rows, found)
    # what the prepare stage kept: Vertex's rules, which drop the small boxes
    prepared = {s.data_row_id: s for s in SampleFile(paths.samples)}
    assert len(prepared["v1"].boxes) == 1
    run_metrics = orjson.loads(paths.metrics.read_bytes())

    files = read_evaluation_files(paths.export, paths.labelbox_predictions)
    cli = evaluate(files.evaluated, files.predictions.table).to_json()
    assert run_metrics["counts"] == cli["counts"]
    assert run_metrics["counts"]["ground_truth_boxes"] == 4  # every labelled box
    for key in ("map", "map_50", "map_75", "map_small", "mar_100"):
        assert run_metrics[key] == cli[key], key


def test_rows_the_trainer_could_not_predict_are_left_out_not_scored_as_missed(
    tmp_path: Path,
) -> None:
    """A Vertex instance that failed (recorded by the backend in prediction_failures.jsonl) is
    not "nothing detected": its row leaves the metrics, and the result counts it."""
    ctx = SimpleRunContext("run-2", tmp_path / "run")
    paths = stages.RunPaths(ctx.workdir)
    rows = [
        model_run_row("v1", split="validation", objects=[box_object("car", 100, 100, 200, 100)]),
        model_run_row("v2", split="test", objects=[box_object("car", 50, 50, 300, 200)]),
    ]
    found = [Prediction("v1", (Detection(Box("car", 100, 100, 300, 200), 0.9),))]
    failure = PredictionFailure(data_row_id="v2", detail="errors_00001.jsonl: not decoded")
    predicted = PredictResult(failed_rows=1, failures=(failure,))
    result = _prepare_and_evaluate(
        ctx, paths, rows, found, trainer_name="vertex", predicted=predicted
    )
    metrics = orjson.loads(paths.metrics.read_bytes())
    assert metrics["counts"]["images"] == 1
    assert metrics["map_50"] == pytest.approx(1.0)  # 0.5 if v2 were scored as missed
    assert result.prediction_failures == 1
    assert result.test is None  # the only test row could not be predicted


def test_a_row_with_no_label_is_left_out_and_its_predictions_reported(tmp_path: Path) -> None:
    """A model-run row still to label (``labels: []``) is not an image with no objects: the
    stage leaves it out (reported) and counts its detections as on unlabelled rows, as
    ``vmt evaluate`` does; a row labelled with no objects stays an image with no objects."""
    ctx = SimpleRunContext("run-3", tmp_path / "run")
    paths = stages.RunPaths(ctx.workdir)
    still_to_label = model_run_row("v3", split="validation")
    run = still_to_label["experiments"]["model-1"]["runs"]["run-1"]
    run["labels"] = []
    rows = [
        model_run_row("v1", split="validation", objects=[box_object("car", 100, 100, 200, 100)]),
        model_run_row("v2", split="test", objects=[]),
        still_to_label,
    ]
    found = [
        Prediction("v1", (Detection(Box("car", 100, 100, 300, 200), 0.8),)),
        Prediction("v2", ()),
        Prediction("v3", (Detection(Box("car", 1, 1, 50, 50), 0.9),)),
    ]
    _prepare_and_evaluate(ctx, paths, rows, found)
    metrics = orjson.loads(paths.metrics.read_bytes())
    assert metrics["counts"]["images"] == 2  # v1, and v2 labelled with no objects
    assert metrics["map"] == pytest.approx(1.0)  # 0.5-ish if v3's 0.9 box were a false positive
    assert metrics["ground_truth_left_out"]["unlabelled_row"]["count"] == 1
    assert metrics["ignored_predictions"]["by_reason"]["on_unlabelled_row"]["count"] == 1
    assert "unknown_data_row" not in metrics["ignored_predictions"]["by_reason"]
    assert {
        r["dataRow"]["id"] for r in map(orjson.loads, paths.row_metrics.read_bytes().splitlines())
    } <= {"v1", "v2"}

    files = read_evaluation_files(paths.export, paths.labelbox_predictions)
    cli = evaluate(files.evaluated, files.predictions.table).to_json()
    assert cli["counts"] == {**metrics["counts"], "predictions_ignored": 0}
    assert cli["map"] == metrics["map"]
    assert [r.reason for r in files.predictions.ignored] == ["on_unlabelled_row"]


def _prepare_and_evaluate(
    ctx: SimpleRunContext,
    paths: stages.RunPaths,
    rows: list[dict[str, Any]],
    found: list[Prediction],
    *,
    trainer_name: str = "local",
    predicted: PredictResult | None = None,
) -> EvaluateResult:
    """The export, the prepared samples (Vertex's rules), the predictions, then the stage (told
    of the rows the trainer could not predict by ``predicted``)."""
    paths.export.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    with artifacts.sample_writer(paths.samples) as kept:
        for item in read_samples(paths.export, ExportOptions(require_boxes=False)):
            if isinstance(item, Sample):
                kept.write(item)
    with artifacts.prediction_writer(paths.predictions) as out:
        for prediction in found:
            out.write(prediction)
    stages.write_labelbox_predictions(found, paths.labelbox_predictions, uuid_scope=ctx.run_id)
    return stages.evaluate_stage(
        ctx,
        trainer_name=trainer_name,
        samples=SampleFile(paths.samples),
        predictions=paths.predictions,
        metrics_out=paths.metrics,
        report_out=paths.report,
        row_metrics_out=paths.row_metrics,
        predicted=predicted,
    )
