"""Reads a run's own Cloud Storage images for the dashboard: only objects under the run's
prefix (``gs://BUCKET/PREFIX/RUN/``, where its prepare stage staged them), through the
service's storage client; the bucket is never exposed (the dashboard serves a resized copy)."""

from __future__ import annotations

import threading
from typing import Any

from vmt.backends.gcs import build_storage_client, run_prefix
from vmt.config import Settings
from vmt.errors import BackendError
from vmt.formats.image_uri import redact
from vmt.formats.vertex import MAX_TRAINING_IMAGE_BYTES

READ_TIMEOUT_S = 30.0


class RunImageReader:
    """``serves(run_id, uri)``: whether ``uri`` is one of the run's staged objects;
    ``read(run_id, uri)``: its bytes, None when missing or larger than Vertex accepts."""

    def __init__(self, settings: Settings, *, client: Any = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = threading.Lock()

    def _name(self, run_id: str, uri: str) -> str | None:
        bucket = self._settings.gcs_bucket
        if not bucket or "/" in run_id or run_id in ("", ".", ".."):
            return None
        root = f"gs://{bucket}/"
        prefix = f"{root}{run_prefix(self._settings, run_id)}/"
        if not uri.startswith(prefix) or any(
            p in ("", ".", "..") for p in uri[len(prefix) :].split("/")
        ):
            return None
        return uri[len(root) :]

    def serves(self, run_id: str, uri: str) -> bool:
        return self._name(run_id, uri) is not None

    def read(self, run_id: str, uri: str) -> bytes | None:
        """Raises ``BackendError`` when Cloud Storage fails (other than not found)."""
        from google.api_core.exceptions import GoogleAPIError, NotFound

        name = self._name(run_id, uri)
        if name is None:
            return None
        with self._lock:
            if self._client is None:
                self._client = build_storage_client(self._settings, pool_size=4)
            client = self._client
        blob = client.bucket(self._settings.gcs_bucket).blob(name)
        try:
            blob.reload(timeout=READ_TIMEOUT_S)
            if blob.size is not None and blob.size > MAX_TRAINING_IMAGE_BYTES:
                return None
            data: bytes = blob.download_as_bytes(timeout=READ_TIMEOUT_S)
        except NotFound:
            return None
        except GoogleAPIError as exc:
            raise BackendError(f"cannot read {redact(uri)}: {type(exc).__name__}") from exc
        return data


def run_image_reader(settings: Settings) -> RunImageReader | None:
    """A reader when a bucket is configured (``VMT_GCS_BUCKET``), else None."""
    return RunImageReader(settings) if settings.gcs_bucket else None
