"""metrics.json shape, the HTML report and the Labelbox per-row metric rows."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from PIL import Image

from tests.builders.detection_sets import random_dataset
from vmt.domain import Rejection
from vmt.evaluation import Evaluation, evaluate, row_metric_rows, write_report_html
from vmt.evaluation.labelbox_metrics import MAX_METRICS_PER_ROW, RESERVED_SCALAR_NAMES

ISSUE_KEYS = {
    "map", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_1", "mar_10",
    "mar_100", "per_class", "confidence_sweep", "pr_curves", "confusion_matrix", "per_row",
}  # fmt: skip
CLASS_KEYS = {
    "ap", "ap_50", "ap_75", "gt_count", "pred_count", "best_f1", "best_threshold", "precision",
    "recall",
}  # fmt: skip


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    samples, predictions, _ = random_dataset(21, images=30)
    return evaluate(samples, predictions).with_rejections(
        [Rejection("malformed_json", 7, None, "not JSON"), Rejection("unknown_class", 9, "r")],
        [Rejection("missing_confidence", 3, "r", "read as 1.0")],
    )


def test_metrics_json_has_the_issue_keys(evaluation: Evaluation) -> None:
    doc = evaluation.to_json()
    assert set(doc) >= ISSUE_KEYS
    orjson.dumps(doc)  # plain JSON types only
    for name, metrics in doc["per_class"].items():
        assert set(metrics) >= CLASS_KEYS, name
    # a class only predicted: no AP (null, not 0), excluded from the means
    assert doc["per_class"]["only_pred"]["ap"] is None
    assert doc["per_class"]["only_pred"]["gt_count"] == 0
    assert doc["pr_curves"]["per_class"]["only_pred"] is None
    sweep = doc["confidence_sweep"]
    assert sweep["thresholds"] == [round(i * 0.05, 2) for i in range(21)]
    assert len(sweep["overall"]["f1"]) == 21
    assert len(doc["pr_curves"]["recall"]) == 101
    labels = doc["confusion_matrix"]["labels"]
    assert labels[-1] == "background"
    assert len(doc["confusion_matrix"]["matrix"]) == len(labels)
    rows = doc["per_row"]
    assert len(rows) == 30
    scores = [r["error_score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(r["error_score"] == r["fp"] + r["fn"] for r in rows)


def test_metrics_json_says_what_was_ignored_and_why(evaluation: Evaluation) -> None:
    doc = evaluation.to_json()
    ignored = doc["ignored_predictions"]
    assert ignored["total"] == 2 == doc["counts"]["predictions_ignored"]
    assert ignored["by_reason"]["malformed_json"] == {
        "count": 1,
        "lines": [7],
        "examples": ["line 7: not JSON"],
    }
    assert doc["warnings"]["missing_confidence"]["count"] == 1


def test_report_is_self_contained_and_draws_the_worst_rows(
    evaluation: Evaluation, tmp_path: Path
) -> None:
    image = tmp_path / "img.png"
    Image.new("RGB", (300, 200), (120, 160, 200)).save(image)
    worst = evaluation.worst_rows(12)
    first = evaluation.data.rows[worst[0]].data_row_id
    out = tmp_path / "report.html"
    write_report_html(evaluation, out, image_path=lambda row: image if row == first else None)
    html = out.read_text(encoding="utf-8")
    for section in ("Headline", "Per class", "Curves", "Confusion matrix", "Error breakdown",
                    "Worst rows", "malformed_json"):  # fmt: skip
        assert section in html
    assert html.count("<svg") >= 6 + len(worst)
    assert html.count("data:image/jpeg;base64,") == 1
    # nothing fetched from the network: no scripts, stylesheets or remote URLs
    assert "<script" not in html and "<link" not in html
    urls = set(re.findall(r"https?://[^\"' )]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}


def test_row_metric_rows_are_valid_labelbox_metrics(evaluation: Evaluation) -> None:
    from labelbox.data.serialization.ndjson.metric import (
        NDConfusionMatrixMetric,
        NDScalarMetric,
    )

    rows = list(row_metric_rows(evaluation))
    by_row: dict[str, int] = {}
    for row in rows:
        by_row[row["dataRow"]["id"]] = by_row.get(row["dataRow"]["id"], 0) + 1
        if row["aggregation"] == "CONFUSION_MATRIX":
            NDConfusionMatrixMetric.model_validate(row)
            assert 2 <= len(row["metricValue"]) <= 15
            for tp, fp, tn, fn in row["metricValue"].values():
                assert min(tp, fp, tn, fn) >= 0 and tn == 0
        else:
            NDScalarMetric.model_validate(row)
            assert row["metricName"].lower() not in RESERVED_SCALAR_NAMES
    assert set(by_row) == {s.data_row_id for s in evaluation.data.rows}
    assert max(by_row.values()) <= MAX_METRICS_PER_ROW
    # deterministic: the same evaluation yields the same uuids
    assert [r["uuid"] for r in row_metric_rows(evaluation)] == [r["uuid"] for r in rows]
    assert len({r["uuid"] for r in rows}) == len(rows)


def test_row_confusion_at_the_chosen_confidence_matches_the_row_counts(
    evaluation: Evaluation,
) -> None:
    # the 0.x key nearest below the chosen confidence agrees with per_row when they coincide
    ev = evaluate(evaluation.data.rows, [], confidence=0.5)
    for row in row_metric_rows(ev):
        if row["metricName"] == "50pct_iou" and "featureName" not in row:
            i = next(j for j, s in enumerate(ev.data.rows) if s.data_row_id == row["dataRow"]["id"])
            assert row["metricValue"]["0.5"] == [0, 0, 0, int(ev.row_fn[i])]


def test_nothing_at_all_still_gives_a_report_and_json(tmp_path: Path) -> None:
    from vmt.domain import Sample, Split

    ev = evaluate([Sample("r", "u", 10, 10, Split.TEST, ())], [])
    doc = ev.to_json()
    assert doc["map"] is None and doc["per_class"] == {}
    assert doc["confusion_matrix"]["matrix"] == [[0]]
    write_report_html(ev, tmp_path / "r.html")
    assert "No errors at this threshold" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert [r["metricName"] for r in row_metric_rows(ev)][:4] == [
        "error_score", "matched_boxes", "false_boxes", "missed_boxes",
    ]  # fmt: skip


def test_the_gallery_keeps_the_report_under_5_mb_with_noisy_images(
    evaluation: Evaluation, tmp_path: Path
) -> None:
    import numpy as np

    noise = np.random.default_rng(0).integers(0, 256, (1200, 1600, 3), dtype=np.uint8)
    image = tmp_path / "noise.png"
    Image.fromarray(noise).save(image, compress_level=1)
    out = tmp_path / "report.html"
    write_report_html(evaluation, out, image_path=lambda row: image)
    html = out.read_text(encoding="utf-8")
    assert html.count("data:image/jpeg;base64,") == len(evaluation.worst_rows(12)) == 12
    assert out.stat().st_size < 5_000_000
