"""Local Google Cloud for tests: gcp-storage-emulator in-process plus the fake Vertex REST API,
both on 127.0.0.1, and the settings that point the real SDKs at them."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.fakes.vertex_server import FakeVertex

BUCKET = "vmt-test-bucket"
PROJECT = "test-project"
REGION = "us-central1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def storage_emulator(bucket: str = BUCKET) -> Iterator[str]:
    """An in-memory GCS emulator with ``bucket``; yields its URL (for STORAGE_EMULATOR_HOST)."""
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def emulator_storage_client(url: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": url},
    )


@dataclass
class LocalGcp:
    storage_url: str
    storage: Any
    vertex: FakeVertex

    def settings_env(self) -> dict[str, str]:
        """Environment for a ``vmt`` process (or ``Settings``) using this local cloud."""
        return {
            "STORAGE_EMULATOR_HOST": self.storage_url,
            "VMT_GCP_PROJECT": PROJECT,
            "VMT_GCP_REGION": REGION,
            "VMT_GCS_BUCKET": BUCKET,
            "VMT_VERTEX_API_ENDPOINT": self.vertex.url,
            "VMT_GCP_ANONYMOUS_CREDENTIALS": "true",
            "VMT_VERTEX_POLL_SECONDS": "0.01",
            "VMT_VERTEX_POLL_MAX_SECONDS": "0.05",
            "VMT_STAGING_CONCURRENCY": "8",
        }

    def read_text(self, name: str) -> str:
        return str(self.storage.bucket(BUCKET).blob(name).download_as_text())

    def names(self, prefix: str = "") -> list[str]:
        return sorted(b.name for b in self.storage.list_blobs(BUCKET, prefix=prefix))


@contextmanager
def local_gcp(**fake_options: Any) -> Iterator[LocalGcp]:
    with storage_emulator() as url:
        storage = emulator_storage_client(url)
        fake = FakeVertex(storage_client=storage, **fake_options).serve()
        try:
            yield LocalGcp(url, storage, fake)
        finally:
            fake.close()
