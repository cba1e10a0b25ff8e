"""LocalTrainer.prepare: local paths, file:// URIs and http(s) URLs served from 127.0.0.1."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.integration.local.context import RecordingContext
from vmt.backends.image_source import FetchPolicy
from vmt.backends.local import LocalTrainer
from vmt.config import Settings
from vmt.domain import Rejection, Sample, Split
from vmt.formats.outbound_policy import OutboundRules

FAST_RETRIES = FetchPolicy(connect_timeout=1.0, read_timeout=2.0, attempts=2, backoff_base=0.01)


def _sample(uri: str, *, line: int, width: int | None = None, height: int | None = None) -> Sample:
    return Sample(f"row-{line}", uri, width, height, Split.TRAINING, line=line)


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "served"
    folder.mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "red.png")
    Image.new("RGB", (25, 50), (10, 10, 200)).save(folder / "blue.jpg", format="JPEG")
    (folder / "notes.txt").write_text("not an image")
    return folder


def _handler(folder: Path, hits: list[str], *, fail_first: int = 0) -> Callable[..., Any]:
    """Serves ``folder``, records each path asked for, answers 503 to the first requests."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if len(hits) <= fail_first:
                self.send_error(503)
                return
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return partial(Handler, directory=str(folder))


@contextmanager
def _serving(handler: Callable[..., Any]) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def server(image_dir: Path) -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    with _serving(_handler(image_dir, hits)) as base:
        yield base, hits


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(ctx: RecordingContext, samples: list[Sample]) -> list[Sample | Rejection]:
    # a CLI run on an export file: local paths and file:// are read
    trainer = LocalTrainer(
        Settings(), fetch_policy=FAST_RETRIES, outbound=OutboundRules.export_file()
    )
    return list(trainer.prepare(ctx, samples))


def test_local_paths_and_file_uris_are_used_in_place_with_dimensions_filled(
    tmp_path: Path, image_dir: Path
) -> None:
    ctx = RecordingContext(tmp_path / "run")
    red, blue = image_dir / "red.png", image_dir / "blue.jpg"
    out = _prepare(ctx, [_sample(str(red), line=1), _sample(blue.as_uri(), line=2)])
    assert all(isinstance(item, Sample) for item in out)
    first, second = out
    assert isinstance(first, Sample) and isinstance(second, Sample)
    assert (first.image_uri, first.width, first.height, first.mime_type) == (
        str(red),
        40,
        30,
        "image/png",
    )
    assert (Path(second.image_uri), second.width, second.height) == (blue, 25, 50)
    assert second.mime_type == "image/jpeg"


def test_http_images_are_downloaded_once_into_the_run_cache(
    tmp_path: Path, server: tuple[str, list[str]]
) -> None:
    base, hits = server
    ctx = RecordingContext(tmp_path / "run")
    samples = [_sample(f"{base}/red.png?X-Goog-Signature=secret", line=1)]
    (prepared,) = _prepare(ctx, samples)
    assert isinstance(prepared, Sample)
    cached = Path(prepared.image_uri)
    assert cached.parent == ctx.workdir / "images" and cached.suffix == ".png"
    assert (prepared.width, prepared.height) == (40, 30)
    # a second prepare (e.g. after a crash) reuses the cache: no second request
    (again,) = _prepare(ctx, samples)
    assert isinstance(again, Sample) and again.image_uri == prepared.image_uri
    assert len(hits) == 1


def test_bad_images_are_rejected_with_a_reason_and_the_line(
    tmp_path: Path, image_dir: Path, server: tuple[str, list[str]]
) -> None:
    base, _ = server
    ctx = RecordingContext(tmp_path / "run")
    samples = [
        _sample(str(image_dir / "absent.png"), line=1),
        _sample(str(image_dir / "notes.txt"), line=2),
        _sample(f"{base}/absent.png?token=secret", line=3),
        _sample(f"http://127.0.0.1:{_closed_port()}/red.png?token=secret", line=4),
        _sample("gs://bucket/red.png", line=5),
        _sample(str(image_dir / "red.png"), line=6, width=400, height=300),
        _sample(str(image_dir / "red.png"), line=7),
    ]
    out = _prepare(ctx, samples)
    rejected = {item.line: item for item in out if isinstance(item, Rejection)}
    assert {line: r.reason for line, r in rejected.items()} == {
        1: "image_missing",
        2: "image_not_supported",
        3: "image_fetch_failed",
        4: "image_fetch_failed",
        5: "image_uri_unsupported",
        6: "image_size_mismatch",
    }
    assert rejected[1].data_row_id == "row-1"
    assert "404" in rejected[3].detail
    assert "connection failed" in rejected[4].detail
    assert all("secret" not in r.detail for r in rejected.values())
    assert [item.line for item in out] == [1, 2, 3, 4, 5, 6, 7]  # order is kept
    assert isinstance(out[-1], Sample)


def test_server_errors_are_retried(tmp_path: Path, image_dir: Path) -> None:
    hits: list[str] = []
    with _serving(_handler(image_dir, hits, fail_first=1)) as base:
        sample = _sample(f"{base}/red.png", line=1)
        (prepared,) = _prepare(RecordingContext(tmp_path / "run"), [sample])
    assert len(hits) == 2  # a 503, then the image
    assert isinstance(prepared, Sample) and prepared.width == 40
