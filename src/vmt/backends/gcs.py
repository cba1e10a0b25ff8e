"""Stage images into Google Cloud Storage for Vertex AI: ``gs://BUCKET/PREFIX/RUN/images/ID.EXT``.

Sources are http(s) URLs, local files (plain paths or ``file://``) or Cloud Storage objects
(``gs://`` or their https URLs, `vmt.formats.image_uri.gcs_object`). An object is used in place
(``gcs_use_sources_in_place``) or copied inside Cloud Storage (objects.rewrite): only its header
(its first 4 KiB, more only for a JPEG whose frame header is further in) is read here, unless
it must be re-encoded. Any other image is copied through this machine: read whole when it fits
one upload request (8 MiB: the request holds it whole anyway) and sent as one multipart upload
(``vmt.backends.gcs_upload``), streamed into a resumable upload when larger (only its first
bytes held), many at once (``staging_concurrency`` threads, shared by ``staging_processes``
worker processes: ``vmt.backends.process_batches``), with retries. An object already staged
with the same source size is kept, so a resumed run copies only what is missing. A failed
image becomes a ``Rejection``, never a failed run.
"""

from __future__ import annotations

import io
import itertools
import logging
import queue
import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from vmt.backends import image_source
from vmt.backends.gcs_upload import ImageUploader
from vmt.backends.image_source import (
    SNIFF_LIMIT,
    FetchPolicy,
    ImageFetcher,
    ImageRejected,
    sniff,
    transient_status,
)
from vmt.backends.outbound import rules_for
from vmt.backends.process_batches import (
    chunked,
    map_batches,
    process_count,
    threads_per_process,
)
from vmt.config import Settings
from vmt.domain import Rejection, Sample
from vmt.errors import BackendError, InputError, VmtError
from vmt.formats.image_header import EXTENSIONS, ImageInfo, sniff_image
from vmt.formats.image_transcode import (
    TRAINABLE_MIME_TYPES,
    Encoded,
    needs_transcode,
    transcode_for_training,
)
from vmt.formats.image_uri import GcsPath, gcs_object, redact, redact_text
from vmt.formats.outbound_policy import OutboundRules
from vmt.formats.vertex import MAX_TRAINING_IMAGE_BYTES
from vmt.pipeline.protocols import RunContext
from vmt.reasons import Reason
from vmt.retry import Backoff, retry_call

log = logging.getLogger("vmt")

T = TypeVar("T")
R = TypeVar("R")

_UPLOAD_CHUNK = 8 * 1024 * 1024
_FIRST_HEADER_RANGE = 4 * 1024
_META_SOURCE_SIZE = "vmt-source-size"
_META_WIDTH = "vmt-width"
_META_HEIGHT = "vmt-height"


# --- locations and clients --------------------------------------------------------------------


def run_prefix(settings: Settings, run_id: str) -> str:
    """Object-name prefix of everything a run writes (``PREFIX/RUN``)."""
    return f"{settings.gcs_prefix.strip('/')}/{run_id}".lstrip("/")


def build_storage_client(settings: Settings, *, pool_size: int | None = None) -> Any:
    """A ``google.cloud.storage.Client`` whose connection pool fits ``pool_size`` threads.

    Honours ``STORAGE_EMULATOR_HOST`` (tests, the local emulator)."""
    import requests.adapters
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud import storage  # type: ignore[attr-defined]

    from vmt.backends.gcp_credentials import gcp_credentials

    credentials = gcp_credentials(settings)
    session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
    size = pool_size or settings.staging_concurrency
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # requests re-reads proxy variables from the environment on every request (~0.5 ms of
    # CPU per upload); read them once instead.
    session.proxies.update(urllib.request.getproxies())
    session.trust_env = False
    return storage.Client(
        project=settings.gcp_project or None, credentials=credentials, _http=session
    )


def upload_file(
    client: Any, path: Path, uri: str, *, content_type: str, deadline_s: float = 300.0
) -> None:
    """Upload a local file (import JSONL, instances JSONL) to ``uri``, with retries for up to
    ``deadline_s`` seconds."""
    target = GcsPath.parse(uri)
    blob = client.bucket(target.bucket).blob(target.name, chunk_size=_UPLOAD_CHUNK)
    gcs_call(
        # retry=None: the SDK's own retries (120 s) would stack on ours and stretch the bound
        lambda: blob.upload_from_filename(
            str(path), content_type=content_type, timeout=120, retry=None
        ),
        backoff=Backoff(base=1.0, cap=30.0, deadline=deadline_s),
        describe=f"upload {uri}",
    )
    log.info("uploaded %s (%d bytes)", uri, path.stat().st_size)


def gcs_call(fn: Callable[[], T], *, backoff: Backoff, describe: str) -> T:
    """``fn`` retried on transient failures within ``backoff``; a failure that outlasts them
    (or that no retry can fix) is raised as a BackendError naming Cloud Storage."""
    try:
        return retry_call(fn, is_retryable=is_transient, backoff=backoff, describe=describe)
    except Exception as exc:
        if isinstance(exc, VmtError):
            raise
        raise BackendError(
            f"Cloud Storage: {describe} failed: {type(exc).__name__}: {exc}"[:500],
            retryable=is_transient(exc),
        ) from exc


def is_transient(exc: BaseException) -> bool:
    """What the image seam retries (network errors, timeouts, 408/429/5xx), and the same from
    the Cloud Storage client (its API errors, requests' transport errors)."""
    import requests
    from google.api_core import exceptions as api_exceptions

    if image_source.is_transient(exc):
        return True
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return exc.code is not None and transient_status(int(exc.code))
    if isinstance(exc, api_exceptions.RetryError):  # the SDK's own retries ran out
        return exc.cause is None or is_transient(exc.cause)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(status, int) and transient_status(status)


# --- staging ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Staged:
    uri: str
    size: int | None
    source_size: int | None
    width: int | None
    height: int | None
    mime_type: str | None


@dataclass(frozen=True, slots=True)
class TrainingImage:
    """An image as staged: its bytes, type and size in pixels, and what the source was
    (``source``: type and size before any re-encoding, for scaling boxes)."""

    data: bytes
    mime_type: str
    width: int
    height: int
    source: ImageInfo


class ImageStager:
    """Copies the images of samples into the run's GCS folder; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        storage_client: Any | None = None,
        max_image_bytes: int = MAX_TRAINING_IMAGE_BYTES,
        backoff: Backoff | None = None,
        policy: FetchPolicy | None = None,
        rules: OutboundRules | None = None,
    ) -> None:
        """``rules``: what image locations may reach; default the service's
        (``vmt.backends.outbound.rules_for``)."""
        settings.require("gcs_bucket")
        self._settings = settings
        self._bucket_name = str(settings.gcs_bucket)
        self._processes = process_count(settings)
        self._workers = settings.staging_concurrency
        self._storage = storage_client or build_storage_client(settings)
        self._rules = rules or rules_for(settings)
        self._fetcher = ImageFetcher(
            policy, rules=self._rules, storage=self._storage, pool_size=self._workers
        )
        self._uploader = ImageUploader(
            settings, self._storage.api_endpoint, pool_size=self._workers
        )
        self._max_image_bytes = max_image_bytes
        self._backoff = backoff or self._fetcher.policy.backoff()
        # Re-encoding decodes whole images: only a couple at a time, whatever the concurrency.
        self._transcode_slots = threading.Semaphore(2)

    def images_prefix(self, run_id: str) -> str:
        return f"{run_prefix(self._settings, run_id)}/images/"

    def stage(self, ctx: RunContext, samples: Iterable[Sample]) -> Iterator[Sample | Rejection]:
        """Yield each sample with ``image_uri`` in GCS (and size/type filled in), or a Rejection.

        Results come in completion order, not input order. With ``staging_processes`` > 1
        the samples go in batches to worker processes (``vmt.backends.process_batches``), each
        staging its batch as this process would, on its share of ``staging_concurrency``
        threads with its own storage client (``storage_client`` serves this process only)."""
        prefix = self.images_prefix(ctx.run_id)
        total = len(samples) if isinstance(samples, list | tuple) else None
        done = 0
        copied = 0

        for result, did_copy in self._staged(prefix, samples, ctx.check_cancelled):
            done += 1
            copied += did_copy
            if done % 50 == 0 or done == total:
                ctx.progress(done, total, what="staging images")
            yield result
        ctx.progress(done, total, what="staging images")
        ctx.event("images staged", images=done, copied=copied, already_present=done - copied)

    def _existing(self, prefix: str) -> dict[str, _Staged]:
        existing = self._list_existing(prefix)
        if existing:
            log.info(
                "%d images already staged under gs://%s/%s",
                len(existing),
                self._bucket_name,
                prefix,
            )
        return existing

    def _staged(
        self, prefix: str, samples: Iterable[Sample], check_cancelled: Callable[[], None]
    ) -> Iterator[tuple[Sample | Rejection, bool]]:
        if self._processes <= 1:
            batch = _Batch(prefix, samples, self._existing(prefix))
            return _map_bounded(batch.one(self), batch.samples, self._workers, check_cancelled)
        threads = threads_per_process(self._settings, self._processes)
        worker_settings = self._settings.model_copy(
            update={"staging_processes": 1, "staging_concurrency": threads}
        )
        setup = partial(
            _BatchStager,
            worker_settings,
            self._max_image_bytes,
            self._backoff,
            self._fetcher.policy,
            self._rules,
        )
        results = map_batches(
            self._batches(prefix, samples, _BATCH_ROUNDS * threads),
            local=_unused_local,
            setup=setup,
            processes=self._processes,
            check_cancelled=check_cancelled,
            preload=[__name__],
        )
        return itertools.chain.from_iterable(results)

    def _batches(self, prefix: str, samples: Iterable[Sample], size: int) -> Iterator[_Batch]:
        """Batches of ``size`` samples, each with what is already staged of it. Lists the
        folder when first asked (after the worker processes started: see map_batches)."""
        existing = self._existing(prefix)
        for rows in chunked(samples, size):
            found = {r.data_row_id: existing[r.data_row_id] for r in rows
                     if r.data_row_id in existing}  # fmt: skip
            yield _Batch(prefix, rows, found)

    # -- one image --

    def _stage_one(
        self, sample: Sample, prefix: str, staged: _Staged | None
    ) -> tuple[Sample | Rejection, bool]:
        source = gcs_object(sample.image_uri)
        try:
            if source is not None and self._settings.gcs_use_sources_in_place:
                return self._use_in_place(replace(sample, image_uri=source.uri), source), False
            copy = self._copy if source is None else partial(self._copy_in_cloud, source=source)
            return self._fetcher.retrying(
                lambda: copy(sample, prefix, staged),
                uri=sample.image_uri,
                is_retryable=is_transient,
                backoff=self._backoff,
            )
        except Exception as exc:  # noqa: BLE001 - one bad image is a rejection, not a failed run
            return self._rejection(sample, exc), False

    def read(self, sample: Sample) -> TrainingImage | Rejection:
        """The whole image of ``sample`` as staging stores it (re-encoded where it must be),
        read under the fetch policy's retries; a Rejection (location redacted) when it cannot
        be had. For writers that pack images (training shards): the image's bytes come here
        whatever its source, Cloud Storage objects included."""
        try:
            return self._fetcher.retrying(
                lambda: self._read_once(sample.image_uri),
                uri=sample.image_uri,
                is_retryable=is_transient,
                backoff=self._backoff,
            )
        except Exception as exc:  # noqa: BLE001 - one bad image is a rejection, not a failed run
            return self._rejection(sample, exc)

    def _read_once(self, uri: str) -> TrainingImage:
        source = self._fetcher.open(uri)
        try:
            limit = self._fetcher.policy.max_bytes
            if source.size is not None and source.size > limit:
                raise ImageRejected(
                    Reason.IMAGE_FETCH_FAILED, f"{redact(uri)} is larger than {limit} bytes"
                )
            info = sniff(source)
            data = source.read_all()
        finally:
            source.close()
        if not needs_transcode(info, len(data), max_bytes=self._max_image_bytes):
            return TrainingImage(data, info.mime_type, info.width, info.height, info)
        encoded = self._transcoded(data, info.mime_type)
        stored = sniff_image(encoded.data[:SNIFF_LIMIT])
        if stored is None:
            raise ImageRejected(Reason.IMAGE_CONVERSION_FAILED, f"{info.mime_type}: re-encoded")
        return TrainingImage(encoded.data, encoded.mime_type, stored.width, stored.height, info)

    def _transcoded(self, data: bytes, mime: str) -> Encoded:
        """``data`` re-encoded for training, two images at a time whatever the concurrency
        (decoding holds whole images). Raises ``ImageRejected`` when it cannot be decoded."""
        with self._transcode_slots:
            try:
                return transcode_for_training(data, max_bytes=self._max_image_bytes)
            except (OSError, ValueError) as exc:
                raise ImageRejected(Reason.IMAGE_CONVERSION_FAILED, f"{mime}: {exc}") from exc

    def _rejection(self, sample: Sample, exc: Exception) -> Rejection:
        """The one rule for an image that could not be staged: its reason and a detail with
        the location redacted (logged, truncated)."""
        if isinstance(exc, ImageRejected):
            log.warning("image of %s not staged: %s", sample.data_row_id, exc.detail[:300])
            return exc.rejection(sample)
        reason = Reason.IMAGE_UPLOAD_FAILED if _is_upload_error(exc) else Reason.IMAGE_FETCH_FAILED
        detail = redact_text(
            f"{redact(sample.image_uri)}: {type(exc).__name__}: {exc}", sample.image_uri
        )
        log.warning("image of %s not staged: %s", sample.data_row_id, detail[:300])
        return Rejection(reason, sample.line, sample.data_row_id, detail[:500])

    def _copy(
        self, sample: Sample, prefix: str, staged: _Staged | None
    ) -> tuple[Sample | Rejection, bool]:
        source = self._fetcher.open(sample.image_uri)
        try:
            if staged is not None and source.size is not None and staged.source_size == source.size:
                return _with_image(sample, staged), False
            info = sniff(source)
            data: bytes | None = None
            size = source.size
            mime = info.mime_type
            if (size is None or size <= _UPLOAD_CHUNK) and not needs_transcode(
                info, size, max_bytes=self._max_image_bytes
            ):
                # Unknown length (chunked): needed for the size. Up to one upload chunk the
                # upload is one request holding the whole body anyway, and bytes cost far
                # less CPU to send than a stream read in pieces.
                data = source.read_all()
                size = len(data)
            source_size = size
            if needs_transcode(info, size, max_bytes=self._max_image_bytes):
                data = data if data is not None else source.read_all()
                source_size = len(data)
                encoded = self._transcoded(data, mime)
                data, mime, size = encoded.data, encoded.mime_type, len(encoded.data)
            name = f"{prefix}{sample.data_row_id}{EXTENSIONS[mime]}"
            metadata = {
                _META_SOURCE_SIZE: str(source_size),
                _META_WIDTH: str(info.width),
                _META_HEIGHT: str(info.height),
            }
            if data is not None and len(data) <= _UPLOAD_CHUNK:
                # One request, as the SDK would send it, for a third of its CPU
                # (vmt.backends.gcs_upload); larger images go as the SDK's resumable uploads.
                self._uploader.upload(
                    self._bucket_name, name, data, content_type=mime, metadata=metadata
                )
            else:
                blob = self._storage.bucket(self._bucket_name).blob(name, chunk_size=_UPLOAD_CHUNK)
                blob.metadata = metadata
                stream: io.IOBase = io.BytesIO(data) if data is not None else source.stream()
                blob.upload_from_file(stream, size=size, content_type=mime, timeout=120)
        finally:
            source.close()
        done = _Staged(
            f"gs://{self._bucket_name}/{name}", size, source_size, info.width, info.height, mime
        )
        return _with_image(sample, done), True

    def _copy_in_cloud(
        self, sample: Sample, prefix: str, staged: _Staged | None, *, source: GcsPath
    ) -> tuple[Sample | Rejection, bool]:
        """``source`` copied to the run's folder by Cloud Storage itself (objects.rewrite): only
        its header comes here. One that must be re-encoded (type not trainable, too large) is
        downloaded and re-encoded as any other source. Raises ``ImageRejected``."""
        blob = self._storage.bucket(source.bucket).get_blob(source.name, timeout=60)
        if blob is None:
            raise ImageRejected(Reason.IMAGE_MISSING, f"no such object: {redact(source.uri)}")
        size = int(blob.size or 0)
        if staged is not None and staged.source_size == size:
            return _with_image(sample, staged), False
        info = self._header_info(blob, sample.data_row_id)
        if info is None:
            raise ImageRejected(
                Reason.IMAGE_NOT_SUPPORTED, "not a JPEG/PNG/GIF/BMP/ICO/WEBP/TIFF image"
            )
        if needs_transcode(info, size, max_bytes=self._max_image_bytes):
            return self._copy(replace(sample, image_uri=source.uri), prefix, staged)
        mime = info.mime_type
        name = f"{prefix}{sample.data_row_id}{EXTENSIONS[mime]}"
        target = self._storage.bucket(self._bucket_name).blob(name)
        metadata = {
            _META_SOURCE_SIZE: str(size),
            _META_WIDTH: str(info.width),
            _META_HEIGHT: str(info.height),
        }
        target.metadata, target.content_type = metadata, mime
        token, _, _ = target.rewrite(blob, timeout=120)
        while token is not None:  # a large or cross-location copy takes several calls
            token, _, _ = target.rewrite(blob, token=token, timeout=120)
        if target.metadata != metadata or target.content_type != mime:
            # objects.rewrite keeps the source's metadata where the request's is not applied
            target.metadata, target.content_type = metadata, mime
            target.patch(timeout=60)
        uri = f"gs://{self._bucket_name}/{name}"
        done = _Staged(uri, size, size, info.width, info.height, mime)
        return _with_image(sample, done), True

    def _header_info(self, blob: Any, data_row_id: str) -> ImageInfo | None:
        """Type and size of an object's image from its first bytes (``_FIRST_HEADER_RANGE``:
        a PNG's or GIF's size is in its first 30 bytes, a JPEG's in its frame header, after
        any EXIF block; 8x more only when a large header needs it, up to ``SNIFF_LIMIT``);
        None: not an image. The rest of the image never comes here."""
        want = _FIRST_HEADER_RANGE
        while True:
            head: bytes = retry_call(
                partial(blob.download_as_bytes, start=0, end=want - 1, timeout=60),
                is_retryable=is_transient,
                backoff=self._backoff,
                describe=f"read header of {data_row_id}",
            )
            info = sniff_image(head)
            if info is not None or len(head) < want or want >= SNIFF_LIMIT:
                return info
            want *= 8

    def _use_in_place(self, sample: Sample, path: GcsPath) -> Sample | Rejection:
        if sample.width and sample.height and sample.mime_type in TRAINABLE_MIME_TYPES:
            return sample
        blob = self._storage.bucket(path.bucket).get_blob(path.name, timeout=60)
        if blob is None:
            detail = f"no such object: {redact(path.uri)}"
            return Rejection(Reason.IMAGE_MISSING, sample.line, sample.data_row_id, detail)
        info = self._header_info(blob, sample.data_row_id)
        if info is None:
            return Rejection(Reason.IMAGE_NOT_SUPPORTED, sample.line, sample.data_row_id, path.uri)
        if info.mime_type not in TRAINABLE_MIME_TYPES:
            return Rejection(
                Reason.IMAGE_NOT_SUPPORTED,
                sample.line,
                sample.data_row_id,
                f"{info.mime_type} cannot be used in place: set gcs_use_sources_in_place=false",
            )
        return replace(
            sample,
            width=sample.width or info.width,
            height=sample.height or info.height,
            mime_type=info.mime_type,
        )

    def _list_existing(self, prefix: str) -> dict[str, _Staged]:
        found: dict[str, _Staged] = {}
        blobs = gcs_call(
            lambda: list(self._storage.list_blobs(self._bucket_name, prefix=prefix, retry=None)),
            backoff=self._backoff,
            describe="list staged images",
        )
        for blob in blobs:
            stem = blob.name[len(prefix) :].rsplit(".", 1)[0]
            meta = blob.metadata or {}
            found[stem] = _Staged(
                uri=f"gs://{self._bucket_name}/{blob.name}",
                size=int(blob.size or 0),
                source_size=_int_or_none(meta.get(_META_SOURCE_SIZE)) or blob.size,
                width=_int_or_none(meta.get(_META_WIDTH)),
                height=_int_or_none(meta.get(_META_HEIGHT)),
                mime_type=blob.content_type,
            )
        return found

    def close(self) -> None:
        self._fetcher.close()


_BATCH_ROUNDS = 16
"""A worker process's batch holds this many images per thread: large enough that the drain at
its end (threads idle while the last images finish) costs a few percent."""


@dataclass(frozen=True, slots=True)
class _Batch:
    """Samples staged together, with what is already staged of them."""

    prefix: str
    samples: Iterable[Sample]
    existing: dict[str, _Staged]

    def one(self, stager: ImageStager) -> Callable[[Sample], tuple[Sample | Rejection, bool]]:
        def stage(sample: Sample) -> tuple[Sample | Rejection, bool]:
            return stager._stage_one(sample, self.prefix, self.existing.get(sample.data_row_id))

        return stage


class _BatchStager:
    """A worker process's stager: ``__call__(batch)`` stages a batch on its threads."""

    def __init__(
        self,
        settings: Settings,
        max_image_bytes: int,
        backoff: Backoff,
        policy: FetchPolicy,
        rules: OutboundRules,
    ) -> None:
        self._stager = ImageStager(
            settings, max_image_bytes=max_image_bytes, backoff=backoff, policy=policy, rules=rules
        )
        self._threads = settings.staging_concurrency

    def __call__(self, batch: _Batch) -> list[tuple[Sample | Rejection, bool]]:
        return list(_map_bounded(batch.one(self._stager), batch.samples, self._threads, _go_on))


def _go_on() -> None:
    return None


def _unused_local() -> Callable[[_Batch], list[tuple[Sample | Rejection, bool]]]:
    raise AssertionError("batches go to worker processes only when there are several")


def _with_image(sample: Sample, staged: _Staged) -> Sample:
    return replace(
        sample,
        image_uri=staged.uri,
        width=sample.width or staged.width,
        height=sample.height or staged.height,
        mime_type=staged.mime_type or sample.mime_type,
    )


def _is_upload_error(exc: BaseException) -> bool:
    from google.api_core import exceptions as api_exceptions

    return isinstance(exc, api_exceptions.GoogleAPICallError) or type(exc).__module__.startswith(
        ("google.", "requests.")
    )


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


def _map_bounded(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    check_cancelled: Callable[[], None],
) -> Iterator[R]:
    """``fn`` over ``items`` on ``workers`` threads, at most ``2 * workers`` in flight, results
    in completion order. Consumes ``items`` lazily; O(1) work per item (a completion queue)."""
    if workers < 1:
        raise InputError("staging_concurrency must be >= 1")
    finished: queue.SimpleQueue[Future[R]] = queue.SimpleQueue()
    in_flight = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vmt-stage") as pool:
        try:
            for item in items:
                future = pool.submit(fn, item)
                future.add_done_callback(finished.put)
                in_flight += 1
                if in_flight >= 2 * workers:
                    check_cancelled()
                    in_flight -= 1
                    yield finished.get().result()
            while in_flight:
                check_cancelled()
                in_flight -= 1
                yield finished.get().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
