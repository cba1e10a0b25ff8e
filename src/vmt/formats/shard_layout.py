"""Training shards: tar files of images + boxes in the WebDataset layout, and their manifest.

A shard is a POSIX tar whose members come in groups, one group per sample, consecutive, sharing
a key (the part of the member name before the first dot): ``{key}.{ext}`` holds the image's
bytes as staged (``jpg``, ``png``, ...) and ``{key}.json`` its annotation (``ShardRecord``
below). That is WebDataset's layout (https://github.com/webdataset/webdataset, "The WebDataset
Format"), so any WebDataset reader can stream our shards; we read them with the standard
library's ``tarfile`` in stream mode (``r|``), which never seeks: a shard can be read straight
from a Cloud Storage download stream.

Shards of one run live in one folder: ``{split}-{index:06d}.tar`` and ``manifest.json``
(``ShardManifest``). Shard ``index`` of a split holds that split's samples
``index * shard_size`` to ``(index + 1) * shard_size - 1`` in prepare order, so a shard is a
pure function of its rows: a writer that finds it present skips it (resume), and shards can be
written by several processes at once.

The annotation JSON (``vmt-shards/1``)::

    {"data_row_id": "ck...", "width": 640, "height": 480,
     "labels": ["car", "person"],                # one per box
     "boxes": [[x0, y0, x1, y1], ...]}           # pixels of the stored image, float

Pure: reads and writes the file objects it is given, nothing else.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from vmt.domain import Box, Split
from vmt.errors import InputError

FORMAT = "vmt-shards/1"
MANIFEST_NAME = "manifest.json"
DEFAULT_SHARD_SIZE = 1000
"""Samples per shard: with ~150 KB images, ~150 MB shards (WebDataset suggests 100 MB-1 GB)."""

_KEY = re.compile(r"[0-9A-Za-z_-]+")
_EXTENSION = re.compile(r"[0-9a-z]+")


@dataclass(frozen=True, slots=True)
class ShardRecord:
    """One sample of a shard: its key (unique within the shard, no dot), image bytes with their
    file extension, the image's size in pixels and its ground-truth boxes (pixels)."""

    key: str
    data_row_id: str
    image: bytes
    extension: str
    width: int
    height: int
    boxes: tuple[Box, ...] = ()

    def annotation(self) -> dict[str, Any]:
        return {
            "data_row_id": self.data_row_id,
            "width": self.width,
            "height": self.height,
            "labels": [box.label for box in self.boxes],
            "boxes": [[box.x0, box.y0, box.x1, box.y1] for box in self.boxes],
        }


def shard_name(split: Split | str, index: int) -> str:
    """``training-000042.tar``: the file name of shard ``index`` (0-based) of ``split``."""
    return f"{Split(split).value}-{index:06d}.tar"


def sample_key(position: int) -> str:
    """The key of the sample at ``position`` (0-based, within its split): unique per split."""
    return f"{position:09d}"


def write_shard(out: IO[bytes], records: Iterable[ShardRecord]) -> int:
    """Write ``records`` as one tar to ``out`` (streamed: one record held at a time).

    Returns the number of records. Raises ``InputError`` for a key or extension that would
    break the layout (a dot or a slash in it)."""
    count = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
        for record in records:
            if not _KEY.fullmatch(record.key) or not _EXTENSION.fullmatch(record.extension):
                raise InputError(f"bad shard key or extension: {record.key!r}.{record.extension!r}")
            _add(tar, f"{record.key}.{record.extension}", record.image)
            _add(tar, f"{record.key}.json", json.dumps(record.annotation()).encode())
            count += 1
    return count


def read_shard(stream: IO[bytes]) -> Iterator[ShardRecord]:
    """The records of the tar read from ``stream`` (never seeks), in order.

    Raises ``InputError`` if a sample's group lacks its image or its JSON, or the JSON is not
    ``vmt-shards/1``."""
    key: str | None = None
    parts: dict[str, bytes] = {}
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            member_key, _, extension = member.name.rpartition("/")[2].partition(".")
            if key is not None and member_key != key:
                yield _record(key, parts)
                parts = {}
            key = member_key
            handle = tar.extractfile(member)
            parts[extension] = handle.read() if handle is not None else b""
    if key is not None:
        yield _record(key, parts)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _record(key: str, parts: dict[str, bytes]) -> ShardRecord:
    raw = parts.pop("json", None)
    if raw is None or len(parts) != 1:
        raise InputError(f"shard sample {key!r} needs one image and one .json, got {sorted(parts)}")
    ((extension, image),) = parts.items()
    try:
        data = json.loads(raw)
        boxes = tuple(
            Box(str(label), float(x0), float(y0), float(x1), float(y1))
            for label, (x0, y0, x1, y1) in zip(data["labels"], data["boxes"], strict=True)
        )
        return ShardRecord(
            key=key,
            data_row_id=str(data["data_row_id"]),
            image=image,
            extension=extension,
            width=int(data["width"]),
            height=int(data["height"]),
            boxes=boxes,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"shard sample {key!r}: bad annotation ({exc})") from exc


@dataclass(frozen=True, slots=True)
class SplitShards:
    """One split's shards: file names in order and the number of samples in them."""

    shards: tuple[str, ...]
    samples: int


@dataclass(frozen=True, slots=True)
class ShardManifest:
    """``manifest.json`` of a run's shard folder: the class names (index = class id, sorted)
    and each split's shards. Written last by prepare: its presence means every shard is done."""

    classes: tuple[str, ...]
    splits: dict[str, SplitShards] = field(default_factory=dict)
    shard_size: int = DEFAULT_SHARD_SIZE

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "classes": list(self.classes),
                "shard_size": self.shard_size,
                "splits": {
                    name: {"shards": list(split.shards), "samples": split.samples}
                    for name, split in self.splits.items()
                },
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ShardManifest:
        """Raises ``InputError`` when ``text`` is not a ``vmt-shards/1`` manifest."""
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, not {FORMAT!r}")
            return cls(
                classes=tuple(str(c) for c in data["classes"]),
                shard_size=int(data["shard_size"]),
                splits={
                    str(name): SplitShards(
                        tuple(str(s) for s in split["shards"]), int(split["samples"])
                    )
                    for name, split in data["splits"].items()
                },
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a shard manifest: {exc}") from exc
