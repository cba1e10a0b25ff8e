"""Reading an image from where a data row says it is: http(s), ``gs://``, a local path or
``file://``. Streams: only what is asked for (the first bytes, to detect the type) is held."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import urllib3

from vmt.domain import Rejection, Sample


@dataclass(frozen=True, slots=True)
class GcsPath:
    bucket: str
    name: str

    @classmethod
    def parse(cls, uri: str) -> GcsPath:
        if not uri.startswith("gs://"):
            raise ValueError(f"not a gs:// URI: {uri!r}")
        bucket, _, name = uri[5:].partition("/")
        return cls(bucket, name)

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


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
        return io.BufferedReader(_ChunkReader(self._pending, self._chunks), buffer_size=256 * 1024)

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


def safe_uri(uri: str) -> str:
    """A URI fit for messages: signed URLs carry credentials in the query string."""
    parts = urlsplit(uri)
    return uri if not parts.query else f"{parts.scheme}://{parts.netloc}{parts.path}?..."


class SourceHttpError(Exception):
    """An image origin answered with an error status (retried when transient)."""

    def __init__(self, status: int, uri: str) -> None:
        super().__init__(f"{uri}: HTTP {status}")
        self.status = status


class ImageRejected(Exception):
    """An image that cannot be used, whatever the number of retries."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

    def rejection(self, sample: Sample) -> Rejection:
        return Rejection(self.reason, sample.line, sample.data_row_id, self.detail[:500])


def open_image_source(uri: str, *, http: urllib3.PoolManager, storage: Any) -> ImageSource:
    """Open an http(s) URL, a ``gs://`` object, or a local path / ``file://`` URI for reading.

    Raises ImageRejected for what no retry can fix (404, no such file), SourceHttpError or
    transport errors for what one may."""
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("http", "https"):
        response = http.request("GET", uri, preload_content=False)
        if response.status >= 400:
            response.release_conn()
            if response.status in (401, 403, 404, 410):
                raise ImageRejected(
                    "image_fetch_failed", f"{safe_uri(uri)}: HTTP {response.status}"
                )
            raise SourceHttpError(response.status, safe_uri(uri))
        size = None
        if "content-encoding" not in response.headers:
            length = response.headers.get("content-length")
            size = int(length) if length and length.isdigit() else None

        def close() -> None:
            response.close()  # unread bytes are not worth draining
            response.release_conn()

        return ImageSource(response.stream(256 * 1024), size, close)
    if scheme == "gs":
        path = GcsPath.parse(uri)
        blob = storage.bucket(path.bucket).get_blob(path.name, timeout=60)
        if blob is None:
            raise ImageRejected("image_fetch_failed", f"{uri}: no such object")
        reader = blob.open("rb", chunk_size=1024 * 1024)
        return ImageSource(iter(lambda: reader.read(256 * 1024), b""), blob.size, reader.close)
    local = Path(unquote(urlsplit(uri).path)) if scheme == "file" else Path(uri)
    if scheme not in ("", "file") and len(scheme) > 1:
        raise ImageRejected("image_fetch_failed", f"unsupported image location {safe_uri(uri)}")
    try:
        handle = local.open("rb")
    except OSError as exc:
        raise ImageRejected("image_fetch_failed", f"{local}: {exc.strerror}") from exc
    size = local.stat().st_size
    return ImageSource(iter(lambda: handle.read(256 * 1024), b""), size, handle.close)
