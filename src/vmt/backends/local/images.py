"""Making each sample's image usable locally: a local path or ``file://`` URI is used in place,
an http(s) URL is downloaded (timeouts, retries with backoff) into a cache folder; the image
header gives the type and size, which fill what the export left out.

A sample that cannot be used becomes a `Rejection` with one of the reason codes below. URLs in
messages lose their query string: signed URLs carry credentials there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

import httpx

from vmt.domain import Rejection, Sample
from vmt.formats.image_header import EXTENSIONS, HEADER_BYTES, ImageInfo, sniff_image
from vmt.retry import Backoff, retry_call

log = logging.getLogger("vmt")

IMAGE_MISSING = "image_missing"
IMAGE_UNREADABLE = "image_unreadable"
IMAGE_FETCH_FAILED = "image_fetch_failed"
IMAGE_URI_UNSUPPORTED = "image_uri_unsupported"
IMAGE_SIZE_MISMATCH = "image_size_mismatch"


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    attempts: int = 3
    backoff_base: float = 0.25
    max_bytes: int = 64 * 1024 * 1024
    concurrency: int = 8


class _Unusable(Exception):
    """A sample's image cannot be used; carries the rejection reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _RetryableStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def local_path(image_uri: str) -> Path:
    """The file a prepared sample's ``image_uri`` names (a path or a ``file://`` URI)."""
    if image_uri.startswith("file://"):
        return Path(unquote(urlparse(image_uri).path))
    return Path(image_uri)


def redact_url(url: str) -> str:
    """``url`` without query string, fragment or user info (signed URLs keep secrets there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class ImageResolver:
    """Resolves samples' images into ``cache_dir``; reusable across calls (the cache persists,
    so a prepare step repeated after a crash downloads nothing twice)."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        policy: FetchPolicy | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self._cache_dir = cache_dir
        self._policy = policy or FetchPolicy()
        self._client = client

    def resolve_all(self, samples: Iterable[Sample]) -> Iterator[Sample | Rejection]:
        """Each sample, in order, made usable or rejected; a bounded number in flight."""
        policy = self._policy
        owns_client = self._client is None
        client = self._client or httpx.Client(
            timeout=httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout),
            follow_redirects=True,
        )
        try:
            with ThreadPoolExecutor(max_workers=policy.concurrency) as pool:
                window: deque[Future[Sample | Rejection]] = deque()
                for sample in samples:
                    window.append(pool.submit(self._resolve, client, sample))
                    if len(window) >= policy.concurrency * 4:
                        yield window.popleft().result()
                while window:
                    yield window.popleft().result()
        finally:
            if owns_client:
                client.close()

    def _resolve(self, client: httpx.Client, sample: Sample) -> Sample | Rejection:
        try:
            path = self._local_file(client, sample.image_uri)
            info = _read_header(path)
        except _Unusable as exc:
            return Rejection(exc.reason, sample.line, sample.data_row_id, exc.detail)
        if (sample.width, sample.height) not in {(None, None), (info.width, info.height)}:
            return Rejection(
                IMAGE_SIZE_MISMATCH,
                sample.line,
                sample.data_row_id,
                f"the export says {sample.width}x{sample.height}, the image is "
                f"{info.width}x{info.height}",
            )
        return dataclasses.replace(
            sample,
            image_uri=str(path),
            width=info.width,
            height=info.height,
            mime_type=info.mime_type,
        )

    def _local_file(self, client: httpx.Client, uri: str) -> Path:
        scheme = urlsplit(uri).scheme.lower()
        if scheme in {"http", "https"}:
            return self._download(client, uri)
        if scheme in {"", "file"}:
            path = local_path(uri)
            if not path.is_file():
                raise _Unusable(IMAGE_MISSING, f"no such file: {path}")
            return path
        raise _Unusable(
            IMAGE_URI_UNSUPPORTED,
            f"the local trainer reads local paths, file:// and http(s) URLs, not {scheme}://",
        )

    def _download(self, client: httpx.Client, url: str) -> Path:
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        cached = next(self._cache_dir.glob(f"{key}.*"), None) if self._cache_dir.exists() else None
        if cached is not None:
            return cached
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._cache_dir / f".{key}.{os.getpid()}.part"
        shown = redact_url(url)
        policy = self._policy

        def fetch() -> None:
            with client.stream("GET", url) as response:
                if response.status_code == 429 or response.status_code >= 500:
                    raise _RetryableStatus(response.status_code)
                if response.status_code >= 400:
                    raise _Unusable(IMAGE_FETCH_FAILED, f"HTTP {response.status_code} for {shown}")
                size = 0
                with tmp.open("wb") as out:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > policy.max_bytes:
                            raise _Unusable(
                                IMAGE_FETCH_FAILED,
                                f"{shown} is larger than {policy.max_bytes} bytes",
                            )
                        out.write(chunk)

        try:
            retry_call(
                fetch,
                is_retryable=lambda exc: isinstance(exc, httpx.TransportError | _RetryableStatus),
                backoff=Backoff(base=policy.backoff_base, cap=5.0, max_attempts=policy.attempts),
                describe=f"fetching {shown}",
            )
        except (httpx.HTTPError, _RetryableStatus) as exc:
            tmp.unlink(missing_ok=True)
            raise _Unusable(IMAGE_FETCH_FAILED, f"{shown}: {_describe(exc)}") from exc
        except _Unusable:
            tmp.unlink(missing_ok=True)
            raise
        try:
            info = _read_header(tmp)
        except _Unusable:
            tmp.unlink(missing_ok=True)
            raise
        final = self._cache_dir / f"{key}{EXTENSIONS.get(info.mime_type, '.img')}"
        tmp.replace(final)
        log.info("fetched %s", shown)
        return final


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    if isinstance(exc, _RetryableStatus):
        return str(exc)
    return type(exc).__name__  # httpx messages may quote the URL, query string included


def _read_header(path: Path) -> ImageInfo:
    try:
        with path.open("rb") as handle:
            head = handle.read(HEADER_BYTES)
    except OSError as exc:
        raise _Unusable(IMAGE_UNREADABLE, f"cannot read {path.name}: {exc.strerror}") from exc
    info = sniff_image(head)
    if info is None:
        path_name = path.name
        raise _Unusable(IMAGE_UNREADABLE, f"{path_name} is not a supported image")
    return info
