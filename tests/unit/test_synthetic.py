from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from PIL import Image

from vmt.domain import Sample, Split
from vmt.formats.export_options import ExportOptions
from vmt.formats.labelbox_export import read_samples
from vmt.synthetic import CLASSES, generate_dataset


def _rows(export: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in export.read_bytes().splitlines()]


def _run(row: dict[str, Any]) -> dict[str, Any]:
    (model,) = row["experiments"].values()
    (run,) = model["runs"].values()
    return run  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("synthetic"), images=40, seed=7)


def test_same_seed_gives_identical_files(dataset: Path, tmp_path: Path) -> None:
    again = generate_dataset(tmp_path / "again", images=40, seed=7)
    first, second = _rows(dataset), _rows(again)
    # identical apart from where the files live
    strip = lambda rows: [  # noqa: E731
        {**r, "data_row": {**r["data_row"], "row_data": Path(r["data_row"]["row_data"]).name}}
        for r in rows
    ]
    assert strip(first) == strip(second)
    for a, b in zip(first, second, strict=True):
        assert (
            Path(a["data_row"]["row_data"]).read_bytes()
            == Path(b["data_row"]["row_data"]).read_bytes()
        )


def test_other_seed_gives_other_data(dataset: Path, tmp_path: Path) -> None:
    other = generate_dataset(tmp_path / "other", images=40, seed=8)
    boxes = lambda rows: [_run(r)["labels"][0]["annotations"]["objects"] for r in rows]  # noqa: E731
    assert boxes(_rows(dataset)) != boxes(_rows(other))


def test_export_has_the_labelbox_model_run_shape(dataset: Path) -> None:
    rows = _rows(dataset)
    assert len(rows) == 40
    ids = {r["data_row"]["id"] for r in rows}
    assert len(ids) == 40
    for row in rows:
        data_row = row["data_row"]
        assert set(data_row) >= {"id", "global_key", "row_data"}
        path = Path(data_row["row_data"])
        assert path.is_absolute() and path.suffix == ".png"
        media = row["media_attributes"]
        assert media["mime_type"] == "image/png"
        with Image.open(path) as image:
            assert image.size == (media["width"], media["height"])
            assert image.format == "PNG"
        run = _run(row)
        assert run["split"] in {"training", "validation", "test"}
        objects = run["labels"][0]["annotations"]["objects"]
        assert objects, "every synthetic image holds at least one shape"
        for obj in objects:
            assert obj["annotation_kind"] == "ImageBoundingBox"
            assert obj["name"] in CLASSES
            box = obj["bounding_box"]
            assert box["width"] > 5 and box["height"] > 5
            assert box["left"] >= 0 and box["left"] + box["width"] <= media["width"]
            assert box["top"] >= 0 and box["top"] + box["height"] <= media["height"]


def test_splits_are_80_10_10_and_content_is_varied(dataset: Path) -> None:
    rows = _rows(dataset)
    splits = Counter(_run(r)["split"] for r in rows)
    assert splits == {"training": 32, "validation": 4, "test": 4}
    sizes = {(r["media_attributes"]["width"], r["media_attributes"]["height"]) for r in rows}
    assert len(sizes) > 10
    labels = Counter(
        o["name"] for r in rows for o in _run(r)["labels"][0]["annotations"]["objects"]
    )
    assert set(labels) == set(CLASSES)


def test_the_export_reader_takes_every_row_as_written(dataset: Path) -> None:
    items = list(read_samples(dataset, ExportOptions()))
    assert all(isinstance(item, Sample) for item in items)
    rows = _rows(dataset)
    for sample, row in zip(items, rows, strict=True):
        assert isinstance(sample, Sample)
        run = _run(row)
        assert sample.data_row_id == row["data_row"]["id"]
        assert sample.image_uri == row["data_row"]["row_data"]
        assert sample.split is Split.parse(run["split"])
        assert (sample.width, sample.height) == (
            row["media_attributes"]["width"],
            row["media_attributes"]["height"],
        )
        objects = run["labels"][0]["annotations"]["objects"]
        assert [b.label for b in sample.boxes] == [o["name"] for o in objects]
        for box, obj in zip(sample.boxes, objects, strict=True):
            ltwh = tuple(obj["bounding_box"][k] for k in ("left", "top", "width", "height"))
            assert box.to_ltwh() == pytest.approx(ltwh)


def test_rejects_an_empty_dataset(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="images"):
        generate_dataset(tmp_path, images=0, seed=0)
