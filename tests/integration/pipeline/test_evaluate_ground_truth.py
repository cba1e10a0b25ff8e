"""One ground truth for evaluation: the pipeline's evaluate stage gives the numbers
``vmt evaluate`` gives on the same export and the run's Labelbox predictions file, boxes that
Vertex's filters drop for training included."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.builders.labelbox_rows import box_object, model_run_row
from tests.fakes.simple_run_context import SimpleRunContext
from vmt.domain import Box, Detection, Prediction, Sample
from vmt.evaluation import evaluate
from vmt.formats.evaluation_inputs import read_evaluation_files
from vmt.formats.labelbox_export import ExportOptions, read_samples
from vmt.pipeline import artifacts, stages
from vmt.pipeline.artifacts import SampleFile


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
    paths.export.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    # what the prepare stage keeps: Vertex's rules, which drop the small boxes
    with artifacts.sample_writer(paths.samples) as kept:
        for item in read_samples(paths.export, ExportOptions(require_boxes=False)):
            if isinstance(item, Sample):
                kept.write(item)
    prepared = {s.data_row_id: s for s in SampleFile(paths.samples)}
    assert len(prepared["v1"].boxes) == 1
    found = [
        Prediction("v1", (Detection(Box("car", 100, 100, 300, 200), 0.9),
                          Detection(Box("car", 10, 10, 16, 16), 0.6))),
        Prediction("v2", (Detection(Box("car", 60, 50, 350, 250), 0.7),)),
        Prediction("v3", (Detection(Box("car", 1, 1, 50, 50), 0.3),)),
    ]  # fmt: skip
    with artifacts.prediction_writer(paths.predictions) as out:
        for prediction in found:
            out.write(prediction)
    stages.write_labelbox_predictions(found, paths.labelbox_predictions, uuid_scope="run-1")

    stages.evaluate_stage(
        ctx,
        trainer_name="local",
        samples=SampleFile(paths.samples),
        predictions=paths.predictions,
        metrics_out=paths.metrics,
        report_out=paths.report,
        row_metrics_out=paths.row_metrics,
    )
    run_metrics = orjson.loads(paths.metrics.read_bytes())

    files = read_evaluation_files(paths.export, paths.labelbox_predictions)
    cli = evaluate(files.evaluated, files.predictions.table).to_json()
    assert run_metrics["counts"] == cli["counts"]
    assert run_metrics["counts"]["ground_truth_boxes"] == 4  # every labelled box
    for key in ("map", "map_50", "map_75", "map_small", "mar_100"):
        assert run_metrics[key] == cli[key], key
