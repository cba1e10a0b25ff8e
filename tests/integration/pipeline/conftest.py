"""TEMPORARY stand-ins for the evaluate branch's modules until it lands on main (then deleted):
``vmt.formats.labelbox_predictions.prediction_rows`` and ``vmt.evaluation.evaluate`` & co."""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

import vmt.evaluation
from vmt.domain import Prediction, Sample


def _prediction_rows(prediction: Prediction, *, uuid_for: Any) -> Iterator[dict[str, Any]]:
    for i, d in enumerate(prediction.detections):
        box = d.box
        yield {
            "uuid": uuid_for(prediction.data_row_id, i),
            "dataRow": {"id": prediction.data_row_id},
            "name": box.label,
            "bbox": {"top": box.y0, "left": box.x0, "height": box.height, "width": box.width},
            "confidence": d.score,
        }


class _Evaluation:
    def __init__(self, hits: int, gts: int, images: int) -> None:
        self.ap = hits / gts if gts else 0.0
        self.gts = gts
        self.images = images

    def to_json(self) -> dict[str, Any]:
        return {
            "map": self.ap,
            "map_50": self.ap,
            "map_75": self.ap,
            "counts": {"images": self.images, "ground_truth_boxes": self.gts, "predictions": 0},
        }


def _evaluate(
    samples: Iterable[Sample], predictions: Iterable[Prediction], **_: Any
) -> _Evaluation:
    by_row = {p.data_row_id: {d.box for d in p.detections} for p in predictions}
    hits = gts = images = 0
    for s in samples:
        images += 1
        for b in s.boxes:
            gts += 1
            hits += b in by_row.get(s.data_row_id, set())
    return _Evaluation(hits, gts, images)


def _write_report_html(evaluation: Any, path: Path, **_: Any) -> None:
    path.write_text("<html>stand-in</html>")


def _row_metric_rows(evaluation: Any) -> Iterator[dict[str, Any]]:
    return iter(())


@pytest.fixture(autouse=True)
def _evaluate_branch_standins(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("vmt.formats.labelbox_predictions") is None:
        module = types.ModuleType("vmt.formats.labelbox_predictions")
        module.prediction_rows = _prediction_rows  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "vmt.formats.labelbox_predictions", module)
    if not hasattr(vmt.evaluation, "evaluate"):
        monkeypatch.setattr(vmt.evaluation, "evaluate", _evaluate, raising=False)
        monkeypatch.setattr(vmt.evaluation, "write_report_html", _write_report_html, raising=False)
        monkeypatch.setattr(vmt.evaluation, "row_metric_rows", _row_metric_rows, raising=False)
