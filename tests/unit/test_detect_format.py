from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.builders.labelbox_rows import model_run_row
from vmt.errors import InputError
from vmt.formats.detect_format import ground_truth_format, prediction_format

LB_PRED = {"dataRow": {"id": "r"}, "name": "a", "bbox": {}, "confidence": 0.5}
VERTEX = {"instance": {"content": "gs://b/x.jpg"}, "prediction": {}}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # Labelbox model-run export, one row per line
        (orjson.dumps(model_run_row()) + b"\n", "labelbox"),
        # legacy v1 export row
        (orjson.dumps({"DataRow ID": "x", "Label": {}}) + b"\n", "labelbox"),
        # COCO on one line
        (orjson.dumps({"images": [], "annotations": []}), "coco"),
        # COCO pretty-printed
        (orjson.dumps({"images": []}, option=orjson.OPT_INDENT_2), "coco"),
        # predictions are not ground truth
        (orjson.dumps(LB_PRED), None),
        # pretty-printed COCO whose inner lines parse on their own
        (b'{\n "images": [\n  {"id": 1, "file_name": "a.jpg"}\n ]\n}', "coco"),
        # a broken first line does not hide an export
        (b'{"data_row": \n' + orjson.dumps(model_run_row()), "labelbox"),
        # leading blank lines do not matter
        (b"\n\n" + orjson.dumps(model_run_row()), "labelbox"),
    ],
)
def test_ground_truth(tmp_path: Path, content: bytes, expected: str | None) -> None:
    path = tmp_path / "gt"
    path.write_bytes(content)
    if expected is None:
        with pytest.raises(InputError, match="--gt-format"):
            ground_truth_format(path)
    else:
        assert ground_truth_format(path) == expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (orjson.dumps(LB_PRED) + b"\n", "labelbox"),
        # a broken first line does not hide the format
        (b'{"dataRow": \n' + orjson.dumps(LB_PRED) + b"\n", "labelbox"),
        (orjson.dumps(VERTEX) + b"\n", "vertex"),
        (b"[\n" + orjson.dumps({"image_id": 1}) + b"]", "coco"),
        (orjson.dumps({"image_id": "a", "category_id": 1}) + b"\n", "coco"),
        (orjson.dumps(model_run_row()), None),
        (b"", "empty"),
        (b"\n  \r\n", "empty"),
    ],
)
def test_predictions(tmp_path: Path, content: bytes, expected: str | None) -> None:
    path = tmp_path / "pred"
    path.write_bytes(content)
    if expected is None:
        with pytest.raises(InputError):
            prediction_format(path)
    else:
        assert prediction_format(path) == expected


def test_vertex_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "prediction-model-2024"
    out.mkdir()
    with pytest.raises(InputError, match="prediction"):
        prediction_format(out)
    (out / "predictions_00001.jsonl").write_bytes(orjson.dumps(VERTEX))
    assert prediction_format(out) == "vertex"
