"""Image staging through the real google-cloud-storage client into the GCS emulator, from a local
HTTP origin, local files and another bucket."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.fakes.gcp import BUCKET, emulator_storage_client, storage_emulator
from tests.fakes.simple_run_context import SimpleRunContext
from vmt.backends.gcs import ImageStager
from vmt.config import Settings, load_settings
from vmt.domain import Rejection, Sample, Split
from vmt.formats.outbound_policy import OutboundRules


class _CountingHandler(SimpleHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """An HTTP server over a folder; yields (base URL, folder, request paths seen)."""
    folder = tmp_path / "origin"
    folder.mkdir()
    hits: list[str] = []
    handler = type("H", (_CountingHandler,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder, hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with storage_emulator() as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        yield emulator_storage_client(url)


def _settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "gcs_bucket": BUCKET,
        "gcp_project": "p",
        "gcp_anonymous_credentials": True,
        "staging_concurrency": 4,
    }
    return load_settings(**{**base, **overrides})


def _image(path: Path, fmt: str, size: tuple[int, int] = (40, 30)) -> Path:
    Image.new("RGB", size, (200, 10, 10)).save(path, format=fmt)
    return path


def _sample(row: str, uri: str, **kw: Any) -> Sample:
    return Sample(row, uri, kw.pop("width", None), kw.pop("height", None), Split.TRAINING, **kw)


def _stage(stager: ImageStager, ctx: SimpleRunContext, samples: list[Sample]) -> dict[str, Any]:
    return {(r.data_row_id or ""): r for r in stager.stage(ctx, samples)}


@pytest.mark.parametrize("processes", [1, 2])
def test_stages_every_kind_of_source(
    storage: Any, origin: tuple[str, Path, list[str]], tmp_path: Path, processes: int
) -> None:
    base, folder, _ = origin
    _image(folder / "a.jpg", "JPEG")
    _image(folder / "b", "PNG")  # no extension: the type comes from the bytes
    _image(folder / "c.webp", "WEBP")
    _image(folder / "d.tif", "TIFF", (64, 16))
    (folder / "e.jpg").write_bytes(b"<html>not an image</html>")
    local = _image(tmp_path / "f.bmp", "BMP")
    buf = io.BytesIO()
    Image.new("RGB", (12, 8)).save(buf, format="GIF")
    storage.bucket(BUCKET).blob("elsewhere/g.gif").upload_from_string(buf.getvalue())

    samples = [
        _sample("a", f"{base}/a.jpg", width=40, height=30),
        _sample("b", f"{base}/b"),
        _sample("c", f"{base}/c.webp"),
        _sample("d", f"{base}/d.tif"),
        _sample("e", f"{base}/e.jpg"),
        _sample("f", str(local)),
        _sample("g", f"gs://{BUCKET}/elsewhere/g.gif"),
        _sample("h", f"{base}/missing.jpg?X-Goog-Signature=secret"),
        _sample("i", f"file://{local}"),
    ]
    ctx = SimpleRunContext("r1", tmp_path / "work")
    stager = ImageStager(  # a CLI export run
        _settings(staging_processes=processes), rules=OutboundRules.export_file()
    )
    out = _stage(stager, ctx, samples)

    prefix = f"gs://{BUCKET}/vmt/r1/images/"
    staged = {k: v for k, v in out.items() if isinstance(v, Sample)}
    assert {k: v.image_uri for k, v in staged.items()} == {
        "a": prefix + "a.jpg",
        "b": prefix + "b.png",
        "c": prefix + "c.jpg",  # WEBP re-encoded: AutoML does not train on it
        "d": prefix + "d.jpg",  # TIFF too
        "f": prefix + "f.bmp",
        "g": prefix + "g.gif",
        "i": prefix + "i.bmp",
    }
    assert (staged["d"].width, staged["d"].height) == (64, 16)  # from the header
    assert staged["c"].mime_type == "image/jpeg"
    converted = storage.bucket(BUCKET).get_blob("vmt/r1/images/d.jpg")
    assert converted.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(converted.download_as_bytes())).size == (64, 16)
    uploaded = storage.bucket(BUCKET).get_blob("vmt/r1/images/b.png")
    assert uploaded.download_as_bytes() == (folder / "b").read_bytes()
    assert uploaded.content_type == "image/png"
    assert uploaded.metadata == {"vmt-source-size": str((folder / "b").stat().st_size),
                                 "vmt-width": "40", "vmt-height": "30"}  # fmt: skip

    rejected = {k: v for k, v in out.items() if isinstance(v, Rejection)}
    assert rejected["e"].reason == "image_not_supported"
    assert rejected["h"].reason == "image_fetch_failed"
    assert "404" in rejected["h"].detail
    assert "secret" not in rejected["h"].detail  # signed-URL credentials never in messages
    assert ctx.progress_calls[-1][:2] == (9, 9)


@pytest.mark.parametrize("processes", [1, 2])
def test_resumed_staging_copies_only_what_is_missing(
    storage: Any, origin: tuple[str, Path, list[str]], tmp_path: Path, processes: int
) -> None:
    base, folder, _hits = origin
    samples = []
    for i in range(6):
        _image(folder / f"{i}.png", "PNG")
        samples.append(_sample(f"r{i}", f"{base}/{i}.png"))
    ctx = SimpleRunContext("r2", tmp_path / "work")
    first = _stage(ImageStager(_settings(staging_processes=processes)), ctx, samples)
    assert all(isinstance(v, Sample) for v in first.values())
    blob = storage.bucket(BUCKET).get_blob("vmt/r2/images/r3.png")
    generations = {b.name: b.generation for b in storage.list_blobs(BUCKET, prefix="vmt/r2/")}
    storage.bucket(BUCKET).delete_blob(blob.name)

    again = _stage(ImageStager(_settings(staging_processes=processes)), ctx, samples)
    assert {k: v.image_uri for k, v in again.items()} == {k: v.image_uri for k, v in first.items()}
    assert all(v.width == 40 and v.height == 30 for v in again.values())  # from the metadata
    after = {b.name: b.generation for b in storage.list_blobs(BUCKET, prefix="vmt/r2/")}
    rewritten = sorted(name for name in after if after[name] != generations.get(name))
    assert rewritten == ["vmt/r2/images/r3.png"]
    assert ctx.events[-1] == ("images staged", {"images": 6, "copied": 1, "already_present": 5})

    # A source that changed size is copied again.
    _image(folder / "0.png", "PNG", (80, 60))
    third = _stage(ImageStager(_settings(staging_processes=processes)), ctx, samples)
    assert (third["r0"].width, third["r0"].height) == (80, 60)
    assert ctx.events[-1][1]["copied"] == 1


def test_oversized_images_are_shrunk(storage: Any, tmp_path: Path) -> None:
    noisy = Image.effect_noise((300, 200), 90).convert("RGB")
    path = tmp_path / "big.png"
    noisy.save(path, format="PNG")
    limit = path.stat().st_size // 3
    ctx = SimpleRunContext("r3", tmp_path / "work")
    stager = ImageStager(_settings(), max_image_bytes=limit, rules=OutboundRules.export_file())
    [staged] = list(stager.stage(ctx, [_sample("big", str(path))]))
    assert isinstance(staged, Sample)
    blob = storage.bucket(BUCKET).get_blob("vmt/r3/images/big.jpg")
    assert blob.size <= limit
    assert (staged.width, staged.height) == (300, 200)  # the original size: boxes stay put


def test_gs_sources_in_place(storage: Any, tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (33, 22)).save(buf, format="JPEG")
    storage.bucket(BUCKET).blob("theirs/x.jpg").upload_from_string(buf.getvalue())
    buf = io.BytesIO()
    Image.new("RGB", (5, 5)).save(buf, format="WEBP")
    storage.bucket(BUCKET).blob("theirs/y.webp").upload_from_string(buf.getvalue())
    ctx = SimpleRunContext("r4", tmp_path / "work")
    stager = ImageStager(_settings(gcs_use_sources_in_place=True))
    out = _stage(
        stager,
        ctx,
        [_sample("x", f"gs://{BUCKET}/theirs/x.jpg"), _sample("y", f"gs://{BUCKET}/theirs/y.webp")],
    )
    assert out["x"] == replace(
        _sample("x", f"gs://{BUCKET}/theirs/x.jpg"), width=33, height=22, mime_type="image/jpeg"
    )
    assert isinstance(out["y"], Rejection) and "image/webp" in out["y"].detail
    assert [b.name for b in storage.list_blobs(BUCKET, prefix="vmt/")] == []


class _FlakyHandler(_CountingHandler):
    """Answers 503 to the first request for each path, then serves the file."""

    def do_GET(self) -> None:
        self.hits.append(self.path)
        if self.hits.count(self.path) == 1:
            self.send_error(503, "try again")
            return
        SimpleHTTPRequestHandler.do_GET(self)


def test_transient_origin_errors_are_retried(storage: Any, tmp_path: Path) -> None:
    from vmt.retry import Backoff

    folder = tmp_path / "flaky"
    folder.mkdir()
    _image(folder / "a.png", "PNG")
    hits: list[str] = []
    handler = type("F", (_FlakyHandler,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a.png"
        stager = ImageStager(_settings(), backoff=Backoff(base=0.01, cap=0.02, max_attempts=3))
        [staged] = list(stager.stage(SimpleRunContext("r5", tmp_path / "w"), [_sample("a", url)]))
    finally:
        server.shutdown()
        server.server_close()
    assert isinstance(staged, Sample) and staged.image_uri.endswith("/images/a.png")
    assert hits == ["/a.png", "/a.png"]
