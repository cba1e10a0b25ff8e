"""An image uploaded to Cloud Storage in one request: the JSON API's multipart upload
(https://cloud.google.com/storage/docs/uploading-objects#uploading-an-object, "multipart
upload": ``POST {endpoint}/upload/storage/v1/b/BUCKET/o?uploadType=multipart``, a
``multipart/related`` body of the object's JSON resource then its bytes), sent through
google-auth's urllib3 transport (``AuthorizedHttp``: credentials applied and refreshed).

Why not ``Blob.upload_from_file``: staging is CPU-bound, and for a ~150 KB image the SDK's
upload cost 2.32 ms of CPU (blob and request objects, ``requests`` over ``urllib3``, retry and
tracing wrappers) against 0.72 ms for the same request sent here, measured one after the other
on the shared dev machine (docs/benchmarks.md); the SDK still does every other call (listing,
metadata, rewrite, resumable uploads of images larger than one request should carry). The
object's CRC32C goes with the resource, so Cloud Storage checks the bytes it stored, as the
SDK's default (``checksum="auto"``) has it do.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any
from urllib.parse import quote

import urllib3

from vmt.backends.gcp_credentials import gcp_credentials
from vmt.config import Settings

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 120.0


class ImageUploader:
    """Uploads whole objects (bytes in memory) to ``api_endpoint`` (the storage client's:
    ``https://storage.googleapis.com``, or the emulator's). Thread-safe; ``pool_size``
    connections kept."""

    def __init__(self, settings: Settings, api_endpoint: str, *, pool_size: int) -> None:
        from google.auth.transport.urllib3 import AuthorizedHttp

        pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=pool_size,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S),
            retries=False,
        )
        self._http = AuthorizedHttp(gcp_credentials(settings), http=pool)  # type: ignore[no-untyped-call]
        self._endpoint = api_endpoint.rstrip("/")

    def upload(
        self, bucket: str, name: str, data: bytes, *, content_type: str, metadata: dict[str, str]
    ) -> None:
        """Store ``data`` as ``gs://bucket/name``. Raises google.api_core's
        ``GoogleAPICallError`` for an error answer (its ``code`` the HTTP status, so 408, 429
        and 5xx count as transient), urllib3's errors for network failures and timeouts."""
        import google_crc32c
        from google.api_core import exceptions

        resource = {
            "name": name,
            "contentType": content_type,
            "metadata": metadata,
            "crc32c": base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode(),
        }
        boundary = f"vmt-{secrets.token_hex(16)}".encode()
        body = b"".join([
            b"--", boundary, b"\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n",
            json.dumps(resource).encode(),
            b"\r\n--", boundary, b"\r\ncontent-type: ", content_type.encode(), b"\r\n\r\n",
            data,
            b"\r\n--", boundary, b"--\r\n",
        ])  # fmt: skip
        url = f"{self._endpoint}/upload/storage/v1/b/{quote(bucket, safe='')}/o"
        response: Any = self._http.request(
            "POST",
            url + "?uploadType=multipart",
            body=body,
            headers={"content-type": f'multipart/related; boundary="{boundary.decode()}"'},
        )
        if response.status >= 300:
            message = response.data[:300].decode("utf-8", "replace")
            raise exceptions.from_http_status(  # type: ignore[no-untyped-call]
                response.status, f"upload of {name}: {message}"
            )
