"""Predictions made elsewhere on a pool are read by ``vmt evaluate``'s rules
(``evaluation_inputs.read_prediction_rows``): an empty file is "no predictions", and COCO results,
which name classes by category id, are refused with the reason."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.fakes.labelbox_server import make_export_row
from vmt.errors import InputError
from vmt.pool.pool_inputs import read_pool_rows, read_prediction_file


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    path = tmp_path / "pool.ndjson"
    rows = [make_export_row(i, model_run_id="mr", split=None, boxes=()) for i in range(3)]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_an_empty_predictions_file_is_no_predictions_on_every_pool_row(
    pool: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "predictions.ndjson"
    empty.write_bytes(b"")
    table, _ = read_prediction_file(empty, read_pool_rows(pool))
    assert table.data_row_ids == ("dr-000000", "dr-000001", "dr-000002")
    assert len(table) == 0


def test_coco_results_on_a_pool_say_why_they_cannot_be_read(pool: Path, tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(
        orjson.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}])
    )
    with pytest.raises(InputError, match="need COCO ground truth"):
        read_prediction_file(results, read_pool_rows(pool))
