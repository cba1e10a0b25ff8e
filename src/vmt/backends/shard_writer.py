"""Prepare for custom training: each row's image packed into training shards in Cloud Storage,
``gs://BUCKET/PREFIX/RUN/shards/`` (``vmt.formats.shard_layout``), the manifest written last.

Shard ``i`` of a split holds that split's rows ``i * shard_size`` to ``(i + 1) * shard_size - 1``
in the order they come (a rejected row leaves a gap: its key is not in the shard). Each shard
is built by one worker: its rows' images are read by ``ImageStager.read`` (the fetcher, retries,
re-encoding, rejection and redaction rules of staging, one implementation), on the worker's
share of ``staging_concurrency`` threads, in row order into a tar spooled to a local temporary
file, then uploaded with retries. Beside each tar, ``{shard}.rows.json`` records what became of
each row (its size and type, or why it was rejected); it is written before the tar, so a tar
present means its shard is finished. A resumed writer (after a kill) keeps every finished shard
whose rows are the same and rebuilds only the others.

Streaming: rows are read lazily; this process holds the rows of the shards in flight (at most
``2 * processes`` shards plus one filling per split), and each worker one shard being built
(its images in flight, at most ``2 x`` its threads, and the tar on local disk).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from vmt.backends.gcs import (
    ImageStager,
    TrainingImage,
    build_storage_client,
    gcs_call,
    run_prefix,
    upload_file,
)
from vmt.backends.outbound import rules_for
from vmt.backends.process_batches import (
    map_batches,
    map_ordered,
    process_count,
    threads_per_process,
)
from vmt.config import Settings
from vmt.domain import Box, Rejection, Sample, Split
from vmt.formats.image_header import EXTENSIONS
from vmt.formats.outbound_policy import OutboundRules
from vmt.formats.shard_layout import (
    MANIFEST_NAME,
    ShardManifest,
    ShardRecord,
    SplitShards,
    sample_key,
    shard_name,
    write_shard,
)
from vmt.pipeline.protocols import RunContext
from vmt.retry import Backoff

log = logging.getLogger("vmt")

_ROWS_SUFFIX = ".rows.json"

Outcome = tuple[int, int, str] | Rejection
"""What became of one row: the stored image's (width, height, MIME type), or its rejection."""


@dataclass(frozen=True, slots=True)
class ShardJob:
    """One shard to build: ``rows`` are ``split``'s rows from ``index * shard_size`` on."""

    split: Split
    index: int
    shard_size: int
    rows: tuple[Sample, ...]

    @property
    def name(self) -> str:
        return shard_name(self.split, self.index)


@dataclass(frozen=True, slots=True)
class ShardDone:
    """A built (or kept) shard: one outcome per row, in row order."""

    split: Split
    index: int
    outcomes: tuple[Outcome, ...]
    kept: bool


class ShardWriter:
    """Writes a run's training shards and manifest; see the module docstring.

    ``storage_client`` serves this process (one worker process: ``staging_processes`` = 1);
    spawned workers build their own from ``settings`` (``STORAGE_EMULATOR_HOST`` honoured).
    ``rules``: what image locations may reach; default the service's."""

    def __init__(
        self,
        settings: Settings,
        *,
        storage_client: Any | None = None,
        rules: OutboundRules | None = None,
    ) -> None:
        settings.require("gcs_bucket")
        self._settings = settings
        self._rules = rules or rules_for(settings)
        self._storage = storage_client
        self._processes = process_count(settings)

    def folder(self, run_id: str) -> str:
        """``gs://BUCKET/PREFIX/RUN/shards``: where the shards and ``manifest.json`` go."""
        return f"gs://{self._settings.gcs_bucket}/{run_prefix(self._settings, run_id)}/shards"

    def write(self, ctx: RunContext, samples: Iterable[Sample]) -> Iterator[Sample | Rejection]:
        """Pack ``samples`` into shards, yielding each row as packed (size and type of the
        stored image filled in) or as a Rejection, shard by shard in row order; the manifest
        is written once every row is done. Raises ``BackendError`` when Cloud Storage keeps
        failing (a bad image is a Rejection, never a failed run)."""
        prefix = f"{run_prefix(self._settings, ctx.run_id)}/shards/"
        classes: set[str] = set()
        shards: dict[Split, list[str]] = {}
        counts: dict[Split, int] = {}
        done = kept = rejected = 0
        jobs = shard_jobs(samples, self._settings.shard_size, classes)
        builder = partial(_ShardBuilder.spawned, self._settings, self._rules, prefix)
        pending: dict[tuple[Split, int], ShardJob] = {}

        def tracked(jobs: Iterator[ShardJob]) -> Iterator[ShardJob]:
            for job in jobs:
                pending[(job.split, job.index)] = job
                yield job

        results = map_batches(
            tracked(jobs),
            local=partial(self._local_builder, prefix),
            setup=builder,
            processes=self._processes,
            check_cancelled=ctx.check_cancelled,
            preload=[__name__],
        )
        for result in results:
            job = pending.pop((result.split, result.index))
            shards.setdefault(job.split, []).append(job.name)
            kept += result.kept
            for sample, outcome in zip(job.rows, result.outcomes, strict=True):
                done += 1
                if isinstance(outcome, Rejection):
                    rejected += 1
                    yield outcome
                else:
                    counts[job.split] = counts.get(job.split, 0) + 1
                    width, height, mime = outcome
                    yield replace(sample, width=width, height=height, mime_type=mime)
            ctx.progress(done, None, what="writing shards")
        manifest = ShardManifest(
            classes=tuple(sorted(classes)),
            splits={
                split.value: SplitShards(tuple(names), counts.get(split, 0))
                for split, names in shards.items()
            },
            shard_size=self._settings.shard_size,
        )
        self._upload_manifest(prefix, manifest)
        total = sum(len(names) for names in shards.values())
        ctx.event(
            "shards written", shards=total, kept=kept, rows=done, rejected=rejected,
            folder=self.folder(ctx.run_id),
        )  # fmt: skip

    def _local_builder(self, prefix: str) -> _ShardBuilder:
        if self._storage is None:
            self._storage = build_storage_client(self._settings)
        return _ShardBuilder(
            self._settings, self._rules, prefix, self._storage, self._settings.staging_concurrency
        )

    def _upload_manifest(self, prefix: str, manifest: ShardManifest) -> None:
        storage = self._storage or build_storage_client(self._settings, pool_size=2)
        blob = storage.bucket(self._settings.gcs_bucket).blob(prefix + MANIFEST_NAME)
        gcs_call(
            lambda: blob.upload_from_string(
                manifest.to_json(), content_type="application/json", timeout=60, retry=None
            ),
            backoff=_backoff(self._settings),
            describe=f"write {MANIFEST_NAME}",
        )


class _ShardBuilder:
    """Builds shards in one process: ``__call__(job) -> ShardDone``."""

    def __init__(
        self, settings: Settings, rules: OutboundRules, prefix: str, storage: Any, threads: int
    ) -> None:
        self._settings = settings
        self._prefix = prefix
        self._storage = storage
        self._bucket = storage.bucket(settings.gcs_bucket)
        self._threads = threads
        self._stager = ImageStager(settings, storage_client=storage, rules=rules)

    @classmethod
    def spawned(cls, settings: Settings, rules: OutboundRules, prefix: str) -> _ShardBuilder:
        """The builder of a worker process: its own storage client and its share of threads."""
        threads = threads_per_process(settings, process_count(settings))
        storage = build_storage_client(settings, pool_size=threads)
        return cls(settings, rules, prefix, storage, threads)

    def __call__(self, job: ShardJob) -> ShardDone:
        found = self._finished(job)
        if found is not None:
            return ShardDone(job.split, job.index, found, kept=True)
        outcomes: list[Outcome] = []
        with tempfile.TemporaryDirectory(prefix="vmt-shard-") as tmp:
            path = Path(tmp) / job.name
            with path.open("wb") as out:
                write_shard(out, self._records(job, outcomes))
            rows = json.dumps(
                {"data_row_ids": [s.data_row_id for s in job.rows], "outcomes": _dump(outcomes)}
            )
            sidecar = self._bucket.blob(self._prefix + job.name + _ROWS_SUFFIX)
            gcs_call(
                lambda: sidecar.upload_from_string(
                    rows, content_type="application/json", timeout=60, retry=None
                ),
                backoff=_backoff(self._settings),
                describe=f"write {job.name}{_ROWS_SUFFIX}",
            )
            uri = f"gs://{self._settings.gcs_bucket}/{self._prefix}{job.name}"
            upload_file(self._storage, path, uri, content_type="application/x-tar")
        return ShardDone(job.split, job.index, tuple(outcomes), kept=False)

    def _records(self, job: ShardJob, outcomes: list[Outcome]) -> Iterator[ShardRecord]:
        start = job.index * job.shard_size
        images = map_ordered(self._stager.read, job.rows, self._threads)
        for position, (sample, image) in enumerate(zip(job.rows, images, strict=True), start):
            if isinstance(image, Rejection):
                outcomes.append(image)
                continue
            outcomes.append((image.width, image.height, image.mime_type))
            yield ShardRecord(
                key=sample_key(position),
                data_row_id=sample.data_row_id,
                image=image.data,
                extension=EXTENSIONS[image.mime_type].lstrip("."),
                width=image.width,
                height=image.height,
                boxes=_scaled(sample.boxes, image),
            )

    def _finished(self, job: ShardJob) -> tuple[Outcome, ...] | None:
        """The outcomes of ``job``'s shard when it is finished (tar present) for the same
        rows; None when it must be built."""
        from google.api_core.exceptions import NotFound

        tar = self._bucket.blob(self._prefix + job.name)
        sidecar = self._bucket.blob(self._prefix + job.name + _ROWS_SUFFIX)
        backoff = _backoff(self._settings)
        if not gcs_call(lambda: tar.exists(timeout=60), backoff=backoff, describe="find shard"):
            return None
        try:
            text = gcs_call(
                lambda: sidecar.download_as_text(timeout=60, retry=None),
                backoff=backoff,
                describe=f"read {job.name}{_ROWS_SUFFIX}",
            )
        except NotFound:
            return None
        data = json.loads(text)
        if data.get("data_row_ids") != [s.data_row_id for s in job.rows]:
            log.info("shard %s holds other rows: rebuilt", job.name)
            return None
        return _load(data["outcomes"], job.rows)


def shard_jobs(samples: Iterable[Sample], shard_size: int, classes: set[str]) -> Iterator[ShardJob]:
    """Rows grouped into shard jobs, per split in row order; each split's last shard when the
    rows run out. Adds every box label to ``classes``."""
    filling: dict[Split, list[Sample]] = {}
    index: dict[Split, int] = {}
    for sample in samples:
        classes.update(box.label for box in sample.boxes)
        rows = filling.setdefault(sample.split, [])
        rows.append(sample)
        if len(rows) == shard_size:
            yield _job(sample.split, index, shard_size, rows)
            filling[sample.split] = []
    for split, rows in filling.items():
        if rows:
            yield _job(split, index, shard_size, rows)


def _job(split: Split, index: dict[Split, int], shard_size: int, rows: list[Sample]) -> ShardJob:
    number = index.get(split, 0)
    index[split] = number + 1
    return ShardJob(split, number, shard_size, tuple(rows))


def _scaled(boxes: tuple[Box, ...], image: TrainingImage) -> tuple[Box, ...]:
    """Boxes in pixels of the stored image (re-encoding may have shrunk it)."""
    if (image.width, image.height) == (image.source.width, image.source.height):
        return boxes
    fx = image.width / image.source.width
    fy = image.height / image.source.height
    return tuple(replace(b, x0=b.x0 * fx, y0=b.y0 * fy, x1=b.x1 * fx, y1=b.y1 * fy) for b in boxes)


def _dump(outcomes: list[Outcome]) -> list[Any]:
    return [
        {"reason": o.reason, "detail": o.detail} if isinstance(o, Rejection) else list(o)
        for o in outcomes
    ]


def _load(raw: list[Any], rows: tuple[Sample, ...]) -> tuple[Outcome, ...]:
    return tuple(
        Rejection(str(o["reason"]), s.line, s.data_row_id, str(o["detail"]))
        if isinstance(o, dict)
        else (int(o[0]), int(o[1]), str(o[2]))
        for o, s in zip(raw, rows, strict=True)
    )


def _backoff(settings: Settings) -> Backoff:
    return Backoff(base=1.0, cap=30.0, deadline=settings.vertex_retry_deadline_s)
