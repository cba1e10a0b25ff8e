"""The files a run's stages hand to each other, in the run folder, streamed from disk.

Samples, predictions and rejections are JSONL (``vmt.formats.sample_json``). Files are written to
a temporary name and renamed when complete, so a crash never leaves a half file under the final
name. Readers re-open the file on every iteration: a stage may iterate its input more than once
without the pipeline holding a million rows in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Generic, TypeVar

import orjson

from vmt.domain import Prediction, Rejection, Sample, Split
from vmt.durable_files import atomic_writer
from vmt.formats.sample_json import (
    prediction_from_json,
    prediction_to_json,
    rejection_from_json,
    rejection_to_json,
    sample_from_json,
    sample_to_json,
)

T = TypeVar("T")

EXPORT_FILE = "export.ndjson"
SAMPLES_FILE = "samples.jsonl"
REJECTIONS_FILE = "rejections.jsonl"
PREDICTIONS_FILE = "predictions.jsonl"
LABELBOX_PREDICTIONS_FILE = "predictions.ndjson"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"
ROW_METRICS_FILE = "row_metrics.ndjson"


class JsonlWriter(Generic[T]):
    """Writes one JSON line per item to ``path`` (``durable_files.atomic_writer``: complete and
    on disk under ``path`` after a clean exit, untouched after an error)."""

    def __init__(self, path: Path, encode: Callable[[T], bytes]) -> None:
        self.path = path
        self.count = 0
        self._encode = encode
        self._writer = atomic_writer(path)
        self._file = self._writer.__enter__()

    def write(self, item: T) -> None:
        self._file.write(self._encode(item))
        self._file.write(b"\n")
        self.count += 1

    def __enter__(self) -> JsonlWriter[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._writer.__exit__(exc_type, exc, tb)


def _read_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield line


class SampleFile:
    """A re-iterable view of a samples file, optionally restricted to some splits."""

    def __init__(self, path: Path, *, splits: Iterable[Split] | None = None) -> None:
        self.path = path
        self.splits = frozenset(splits) if splits is not None else None

    def __iter__(self) -> Iterator[Sample]:
        if self.splits is None:
            for line in _read_lines(self.path):
                yield sample_from_json(line)
            return
        wanted = {split.value for split in self.splits}
        for line in _read_lines(self.path):
            record = orjson.loads(line)
            if record["split"] in wanted:  # the rows of other splits are never built
                yield sample_from_json(record)

    def only(self, *splits: Split) -> SampleFile:
        return SampleFile(self.path, splits=splits)


def sample_writer(path: Path) -> JsonlWriter[Sample]:
    return JsonlWriter(path, sample_to_json)


def prediction_writer(path: Path) -> JsonlWriter[Prediction]:
    return JsonlWriter(path, prediction_to_json)


def rejection_writer(path: Path) -> JsonlWriter[Rejection]:
    return JsonlWriter(path, rejection_to_json)


def read_predictions(path: Path) -> Iterator[Prediction]:
    for line in _read_lines(path):
        yield prediction_from_json(line)


def read_rejections(path: Path) -> Iterator[Rejection]:
    if not path.exists():
        return
    for line in _read_lines(path):
        yield rejection_from_json(line)
