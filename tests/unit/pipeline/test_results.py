import pytest

from vmt.pipeline.protocols import Stage
from vmt.pipeline.results import (
    RESULT_TYPES,
    EvaluateResult,
    ExportResult,
    MetricsSummary,
    PredictResult,
    PrepareResult,
    PublishResult,
    StageResult,
    TrainResult,
    result_from_json,
)

SUMMARY = MetricsSummary.model_validate({"mAP": 0.41, "AP50": 0.8, "images": 60})

RESULTS: list[StageResult] = [
    ExportResult(export_bytes=12),
    PrepareResult(
        rows=10,
        samples=8,
        rejected=2,
        boxes=30,
        by_split={"training": 6, "test": 2},
        rejections_by_reason={"image_missing": 2},
    ),
    TrainResult(model="/runs/x/model.pt"),
    PredictResult(predicted_rows=2, detections=9, upload_rows=9),
    EvaluateResult(all=SUMMARY, test=MetricsSummary.model_validate({"AP50": 0.9})),
    EvaluateResult(all=SUMMARY),
    PublishResult(),
]


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: type(r).__name__)
def test_json_round_trip(result: StageResult) -> None:
    assert result_from_json(result.stage, result.to_json()) == result


def test_one_type_per_stage() -> None:
    assert set(RESULT_TYPES) == set(Stage)


def test_results_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        TrainResult(model="a").model = "b"  # type: ignore[misc]


def test_stored_shape_of_older_runs_reads_back() -> None:
    stored = {"all": {"mAP": 0.5, "AP50": 0.7, "AP75": 0.4}, "test": {"mAP": 0.6, "AP50": 0.9}}
    result = EvaluateResult.from_json(stored)
    assert result.to_json() == stored
    assert result.headline().as_metadata() == {"mAP": 0.6, "AP50": 0.9}


def test_headline_is_test_split_when_evaluated_else_all() -> None:
    with_test = EvaluateResult(all=SUMMARY, test=MetricsSummary.model_validate({"AP50": 0.9}))
    assert with_test.headline().rows == "test"
    assert with_test.headline().as_metadata() == {"AP50": 0.9}
    without = EvaluateResult(all=SUMMARY)
    assert without.headline().rows == "all"
    assert without.headline().as_metadata() == {"mAP": 0.41, "AP50": 0.8}


def test_brief_keeps_scalars_only() -> None:
    prepared = RESULTS[1]
    assert prepared.brief() == {"rows": 10, "samples": 8, "rejected": 2, "boxes": 30}


def test_metrics_summary_picks_the_headline_figures() -> None:
    metrics = {
        "map": 0.61,
        "map_50": 0.93,
        "map_75": None,
        "counts": {"images": 60, "ground_truth_boxes": 150, "predictions": 900},
        "per_row": [{"data_row_id": "x"}],
    }
    assert MetricsSummary.of_metrics(metrics).to_json() == {
        "mAP": 0.61,
        "AP50": 0.93,
        "images": 60,
        "ground_truth": 150,
        "predictions": 900,
    }
