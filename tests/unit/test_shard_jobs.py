"""How ``ShardWriter`` cuts rows into shards (``shard_jobs``) and keeps boxes in pixels of the
stored image (``_scaled``): pure, no Cloud Storage."""

from __future__ import annotations

from collections.abc import Iterator

from vmt.backends.gcs import TrainingImage
from vmt.backends.shard_writer import _scaled, shard_jobs
from vmt.domain import Box, Sample, Split
from vmt.formats.image_header import ImageInfo

T, V, X = Split.TRAINING, Split.VALIDATION, Split.TEST


def _rows(splits: list[Split]) -> list[Sample]:
    return [
        Sample(f"r{i}", f"/img/{i}.png", None, None, split, boxes=(Box(f"c{i % 3}", 0, 0, 1, 1),))
        for i, split in enumerate(splits)
    ]


def test_each_split_fills_its_own_shards_in_row_order() -> None:
    rows = _rows([T, V, T, T, X, V, T, T, V, T])
    classes: set[str] = set()
    jobs = list(shard_jobs(rows, 2, classes))
    described = [(j.split.value, j.index, [s.data_row_id for s in j.rows]) for j in jobs]
    assert described == [
        ("training", 0, ["r0", "r2"]),  # full shards as soon as they fill
        ("validation", 0, ["r1", "r5"]),
        ("training", 1, ["r3", "r6"]),
        ("training", 2, ["r7", "r9"]),
        ("validation", 1, ["r8"]),  # then each split's last, short one
        ("test", 0, ["r4"]),
    ]
    assert classes == {"c0", "c1", "c2"}
    assert all(j.shard_size == 2 for j in jobs)


def test_rows_are_read_lazily() -> None:
    taken: list[int] = []

    def rows() -> Iterator[Sample]:
        for i, row in enumerate(_rows([T] * 100)):
            taken.append(i)
            yield row

    jobs = shard_jobs(rows(), 10, set())
    first = next(jobs)
    assert [s.data_row_id for s in first.rows] == [f"r{i}" for i in range(10)]
    assert len(taken) == 10


def test_boxes_follow_an_image_shrunk_by_re_encoding() -> None:
    boxes = (Box("a", 10, 20, 110, 220), Box("b", 0, 0, 400, 300))
    same = TrainingImage(b"", "image/png", 400, 300, ImageInfo("image/png", 400, 300))
    half = TrainingImage(b"", "image/jpeg", 200, 150, ImageInfo("image/tiff", 400, 300))
    assert _scaled(boxes, same) is boxes
    assert _scaled(boxes, half) == (Box("a", 5, 10, 55, 110), Box("b", 0, 0, 200, 150))
