"""The WebDataset-layout shard format: round trip, stream reading, bad shards."""

from __future__ import annotations

import io
import tarfile

import pytest

from vmt.domain import Box, Split
from vmt.errors import InputError
from vmt.formats.shard_layout import (
    ShardManifest,
    ShardRecord,
    SplitShards,
    read_shard,
    sample_key,
    shard_name,
    write_shard,
)


class _NoSeek(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        chunk = self._inner.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def _records() -> list[ShardRecord]:
    return [
        ShardRecord(
            sample_key(i),
            f"row-{i}",
            bytes([i]) * (100 + i),
            "png" if i % 2 else "jpg",
            64,
            48,
            tuple(Box(f"c{j}", j, j + 0.5, j + 10.25, j + 20) for j in range(i % 3)),
        )
        for i in range(5)
    ]


def test_a_shard_round_trips_from_a_stream_that_cannot_seek() -> None:
    out = io.BytesIO()
    assert write_shard(out, _records()) == 5
    back = list(read_shard(io.BufferedReader(_NoSeek(out.getvalue()))))
    assert back == _records()


def test_members_follow_the_webdataset_layout() -> None:
    out = io.BytesIO()
    write_shard(out, _records()[:2])
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        names = tar.getnames()
    assert names == ["000000000.jpg", "000000000.json", "000000001.png", "000000001.json"]


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"a.jpg": b"x"}, "needs one image and one .json"),
        ({"a.json": b"{}"}, "needs one image and one .json"),
        ({"a.jpg": b"x", "a.json": b'{"width": 1}'}, "bad annotation"),
    ],
)
def test_a_broken_sample_is_named(members: dict[str, bytes], message: str) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(InputError, match=message):
        list(read_shard(io.BytesIO(out.getvalue())))


def test_a_key_with_a_dot_is_refused() -> None:
    record = ShardRecord("a.b", "r", b"x", "jpg", 1, 1)
    with pytest.raises(InputError, match="bad shard key"):
        write_shard(io.BytesIO(), [record])


def test_the_manifest_round_trips_and_names_shards() -> None:
    manifest = ShardManifest(
        classes=("car", "person"),
        splits={"training": SplitShards((shard_name(Split.TRAINING, 0),), 7)},
        shard_size=10,
    )
    assert ShardManifest.from_json(manifest.to_json()) == manifest
    assert shard_name("validation", 12) == "validation-000012.tar"
    with pytest.raises(InputError, match="not a shard manifest"):
        ShardManifest.from_json('{"format": "other"}')
