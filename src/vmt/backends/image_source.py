"""The one way images are read from where a data row says they are: http(s) URLs, ``gs://``
objects, local paths and ``file://`` URIs. GCS staging (``backends/gcs.py``) and the local
trainer (``backends/local/images.py``, used by its ``prepare``, so also by ``vmt predict``) both
read through an ``ImageFetcher``:

- one retry policy (``FetchPolicy``): connect/read timeouts; network errors, timeouts, 408,
  429 and 5xx retried with exponential backoff (``vmt.retry``); 401/403/404/410 and every other
  4xx are permanent and never retried;
- one type/size sniffing (``sniff``: the first bytes, ``vmt.formats.image_header``);
- one redaction: a location is shown only as ``vmt.formats.image_uri.redact`` gives it (no
  user-info, no query string), and exception texts are passed through ``redact_text``;
- one rejection vocabulary: the ``Reason.IMAGE_*`` codes of ``vmt.reasons``, raised as
  ``ImageRejected``;
- one outbound policy (``OutboundRules``, ``vmt.backends.outbound``): the scheme is checked
  before anything is opened, and every connection, redirect hops included (followed here, at
  most ``MAX_REDIRECTS``), goes only to addresses the rules allow; a refusal is
  ``Reason.IMAGE_LOCATION_REFUSED`` and nothing is requested.

Streams: only what is asked for (the first bytes, to detect the type) is held in memory.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin

import urllib3

from vmt.backends.outbound import LocationRefused, guarded_pool_manager
from vmt.domain import Rejection, Sample
from vmt.durable_files import atomic_path
from vmt.formats.image_header import EXTENSIONS, HEADER_BYTES, ImageInfo, sniff_image
from vmt.formats.image_uri import GcsPath, local_path, redact, redact_text, scheme
from vmt.formats.outbound_policy import OutboundRules, refusal
from vmt.reasons import Reason
from vmt.retry import Backoff, retry_call

log = logging.getLogger("vmt")

T = TypeVar("T")

PERMANENT_STATUSES = frozenset({401, 403, 404, 410})
"""HTTP statuses no retry can fix (as every 4xx but 408 and 429)."""

SNIFF_LIMIT = 1024 * 1024
"""Read this far at most looking for an image header (JPEG EXIF blocks can be large)."""

_CHUNK = 256 * 1024
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def transient_status(code: int) -> bool:
    """408, 429 and 5xx: worth another try."""
    return code in (408, 429) or 500 <= code < 600


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Timeouts (seconds), retries and the largest download, for every image read."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    deadline: float = 120.0
    """Seconds after the first attempt past which no retry starts."""
    max_bytes: int = 64 * 1024 * 1024
    """Largest image ``download`` keeps (GCS staging re-encodes larger ones instead)."""

    def backoff(self) -> Backoff:
        return Backoff(
            base=self.backoff_base,
            cap=self.backoff_cap,
            deadline=self.deadline,
            max_attempts=self.attempts,
        )


class ImageRejected(Exception):
    """An image that cannot be used, whatever the number of retries. ``detail`` names the
    location only in its redacted form."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

    def rejection(self, sample: Sample) -> Rejection:
        return Rejection(self.reason, sample.line, sample.data_row_id, self.detail[:500])


class TransientHttpError(Exception):
    """An image origin answered with a status worth retrying (408, 429, 5xx)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def is_transient(exc: BaseException) -> bool:
    """True for what another attempt may fix: transient statuses, timeouts, network errors."""
    return isinstance(
        exc, TransientHttpError | urllib3.exceptions.HTTPError | ConnectionError | TimeoutError
    )


def describe_failure(exc: BaseException, uri: str) -> str:
    """A short reason for a failed read, with no credential of ``uri`` in it."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
        text = "connection failed"
    elif isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError):
        text = "timed out"
    elif isinstance(exc, TransientHttpError):
        text = str(exc)
    elif isinstance(exc, urllib3.exceptions.ProtocolError | ConnectionError):
        text = "connection broken"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return redact_text(text, uri)


class ImageSource:
    """An open image: its size when known, its first bytes on demand, then the rest streamed."""

    def __init__(
        self, chunks: Iterator[bytes], size: int | None, close: Callable[[], None]
    ) -> None:
        self.size = size
        self._chunks = chunks
        self._pending = b""
        self._close = close
        self.exhausted = False

    def read_at_least(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end), kept for the next ``stream()``."""
        while len(self._pending) < n and not self.exhausted:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.exhausted = True
            else:
                self._pending += chunk
        return self._pending[:n]

    def read_all(self) -> bytes:
        parts = [self._pending]
        parts.extend(self._chunks)
        self._pending = b""
        self.exhausted = True
        return b"".join(parts)

    def stream(self) -> io.BufferedReader:
        return io.BufferedReader(_ChunkReader(self._pending, self._chunks), buffer_size=_CHUNK)

    def close(self) -> None:
        self._close()


class _ChunkReader(io.RawIOBase):
    def __init__(self, first: bytes, rest: Iterator[bytes]) -> None:
        self._buffer = first
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b)
        while not self._buffer:
            chunk = next(self._rest, None)
            if chunk is None:
                return 0
            self._buffer = chunk
        n = min(len(view), len(self._buffer))
        view[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def sniff(source: ImageSource) -> ImageInfo:
    """Type and size from the first bytes (reading further, up to ``SNIFF_LIMIT``, when a large
    header needs it). Raises ``ImageRejected(Reason.IMAGE_NOT_SUPPORTED)``."""
    want = HEADER_BYTES
    while True:
        head = source.read_at_least(want)
        info = sniff_image(head)
        if info is not None:
            return info
        if (source.exhausted and len(head) < want) or want >= SNIFF_LIMIT:
            raise ImageRejected(
                Reason.IMAGE_NOT_SUPPORTED, "not a JPEG/PNG/GIF/BMP/ICO/WEBP/TIFF image"
            )
        want *= 4


class ImageFetcher:
    """Opens image locations under one ``FetchPolicy`` and one set of ``OutboundRules``
    (default: the service's, https and gs:// to public addresses only). ``storage`` (a
    ``google.cloud.storage.Client``) is needed for ``gs://`` only; without it they are rejected
    as ``Reason.IMAGE_URI_UNSUPPORTED``. Thread-safe: one fetcher serves a pool of workers."""

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        rules: OutboundRules | None = None,
        storage: Any | None = None,
        pool_size: int = 8,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self.rules = rules or OutboundRules()
        self._storage = storage
        # urllib3: half the CPU per download of httpx, and CPU is the limit when staging.
        # A pool of its own: no cloud credentials ever go to image origins.
        self._http = guarded_pool_manager(
            self.rules,
            num_pools=32,
            maxsize=pool_size,
            timeout=urllib3.Timeout(
                connect=self.policy.connect_timeout, read=self.policy.read_timeout
            ),
            retries=urllib3.Retry(total=5, connect=0, read=0, status=0, other=0, redirect=0),
        )

    def check(self, uri: str) -> None:
        """Raise ``ImageRejected(Reason.IMAGE_LOCATION_REFUSED)`` when the rules refuse
        ``uri`` before any connection (scheme, literal address, metadata name)."""
        refused = refusal(uri, self.rules)
        if refused is not None:
            raise ImageRejected(Reason.IMAGE_LOCATION_REFUSED, f"{redact(uri)}: {refused}")

    def open(self, uri: str) -> ImageSource:
        """One attempt at opening ``uri`` for reading. Raises ``ImageRejected`` for what no
        retry can fix (a location the rules refuse included), ``TransientHttpError`` or a
        network error for what one may."""
        self.check(uri)
        kind = scheme(uri)
        if kind in ("http", "https"):
            return self._open_http(uri)
        if kind == "gs":
            return self._open_gcs(uri)
        path = local_path(uri)
        if path is None:
            raise ImageRejected(
                Reason.IMAGE_URI_UNSUPPORTED,
                f"images are read from http(s), gs://, file:// or local paths, not {kind}://",
            )
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise ImageRejected(Reason.IMAGE_MISSING, f"no such file: {path}") from exc
        except OSError as exc:
            raise ImageRejected(
                Reason.IMAGE_UNREADABLE, f"cannot read {path}: {exc.strerror}"
            ) from exc
        size = os.fstat(handle.fileno()).st_size
        return ImageSource(iter(lambda: handle.read(_CHUNK), b""), size, handle.close)

    def _open_http(self, uri: str) -> ImageSource:
        url = uri
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self._http.request("GET", url, preload_content=False, redirect=False)
            except LocationRefused as exc:
                raise ImageRejected(
                    Reason.IMAGE_LOCATION_REFUSED, f"{redact(uri)}: {exc.detail}"
                ) from None
            location = response.headers.get("location")
            if response.status not in _REDIRECTS or not location:
                return self._opened(uri, response)
            response.drain_conn()
            response.release_conn()
            url = urljoin(url, location)
            refused = refusal(url, self.rules)
            if refused is not None:
                raise ImageRejected(
                    Reason.IMAGE_LOCATION_REFUSED, f"{redact(uri)} redirects: {refused}"
                )
        raise ImageRejected(
            Reason.IMAGE_FETCH_FAILED, f"{redact(uri)}: more than {MAX_REDIRECTS} redirects"
        )

    def _opened(self, uri: str, response: Any) -> ImageSource:
        if response.status >= 400:
            response.release_conn()
            if transient_status(response.status):
                raise TransientHttpError(response.status)
            raise ImageRejected(
                Reason.IMAGE_FETCH_FAILED, f"HTTP {response.status} for {redact(uri)}"
            )
        size = None
        if "content-encoding" not in response.headers:
            length = response.headers.get("content-length")
            size = int(length) if length and length.isdigit() else None

        def close() -> None:
            response.close()  # unread bytes are not worth draining
            response.release_conn()

        return ImageSource(response.stream(_CHUNK), size, close)

    def _open_gcs(self, uri: str) -> ImageSource:
        if self._storage is None:
            raise ImageRejected(
                Reason.IMAGE_URI_UNSUPPORTED,
                "gs:// images need Cloud Storage (the vertex trainer); this trainer reads "
                "local paths, file:// and http(s) URLs",
            )
        path = GcsPath.parse(uri)
        blob = self._storage.bucket(path.bucket).get_blob(path.name, timeout=60)
        if blob is None:
            raise ImageRejected(Reason.IMAGE_MISSING, f"no such object: {redact(uri)}")
        reader = blob.open("rb", chunk_size=1024 * 1024)
        return ImageSource(iter(lambda: reader.read(_CHUNK), b""), blob.size, reader.close)

    def retrying(
        self,
        fn: Callable[[], T],
        *,
        uri: str,
        is_retryable: Callable[[BaseException], bool] = is_transient,
        backoff: Backoff | None = None,
    ) -> T:
        """``fn`` under the policy's retries. When they run out (or for a permanent network
        error) raises ``ImageRejected(Reason.IMAGE_FETCH_FAILED)`` saying why, ``uri`` redacted."""
        try:
            return retry_call(
                fn,
                is_retryable=is_retryable,
                backoff=backoff or self.policy.backoff(),
                describe=f"reading {redact(uri)}",
            )
        except (TransientHttpError, urllib3.exceptions.HTTPError, OSError) as exc:
            raise ImageRejected(
                Reason.IMAGE_FETCH_FAILED,
                f"{redact(uri)}: {describe_failure(exc, uri)}",
            ) from exc

    def download(self, uri: str, dest_dir: Path, key: str) -> tuple[Path, ImageInfo]:
        """``uri`` saved as ``dest_dir/KEY.EXT`` (extension from its type), with retries;
        an existing ``KEY.*`` is reused. Local files are not copied: their own path is
        returned. Raises ``ImageRejected``."""
        path = local_path(uri)
        if path is not None:
            source = self.open(uri)
            try:
                return path, _sniff_whole(source, path.name)
            finally:
                source.close()
        cached = next(dest_dir.glob(f"{key}.*"), None) if dest_dir.exists() else None
        if cached is not None:
            with cached.open("rb") as handle:
                info = sniff_image(handle.read(SNIFF_LIMIT))
            if info is not None:
                return cached, info
        dest_dir.mkdir(parents=True, exist_ok=True)
        found: list[ImageInfo] = []

        def fetch() -> None:
            source = self.open(uri)
            try:
                if source.size is not None and source.size > self.policy.max_bytes:
                    raise ImageRejected(
                        Reason.IMAGE_FETCH_FAILED,
                        f"{redact(uri)} is larger than {self.policy.max_bytes} bytes",
                    )
                info = sniff(source)
                final = dest_dir / f"{key}{EXTENSIONS.get(info.mime_type, '.img')}"
                reader = source.stream()
                with atomic_path(final) as tmp, tmp.open("wb") as out:
                    size = 0
                    for chunk in iter(lambda: reader.read(_CHUNK), b""):
                        size += len(chunk)
                        if size > self.policy.max_bytes:
                            raise ImageRejected(
                                Reason.IMAGE_FETCH_FAILED,
                                f"{redact(uri)} is larger than {self.policy.max_bytes} bytes",
                            )
                        out.write(chunk)
                found[:] = [info]
            finally:
                source.close()

        self.retrying(fetch, uri=uri)
        log.info("fetched %s", redact(uri))
        info = found[0]
        return dest_dir / f"{key}{EXTENSIONS.get(info.mime_type, '.img')}", info

    def close(self) -> None:
        self._http.clear()


def _sniff_whole(source: ImageSource, name: str) -> ImageInfo:
    try:
        return sniff(source)
    except ImageRejected:
        raise ImageRejected(
            Reason.IMAGE_NOT_SUPPORTED, f"{name} is not a supported image"
        ) from None
