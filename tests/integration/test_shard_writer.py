"""Training shards written by ``ShardWriter`` through the real google-cloud-storage client into
the GCS emulator, images from a loopback HTTP origin: readable by ``read_shard``, bad rows
rejected (line, reason, no secret) while the rest go on, resume after a SIGKILL keeps finished
shards, and worker processes write the same shards as one process."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.fakes.gcp import BUCKET, emulator_storage_client, storage_emulator
from tests.fakes.simple_run_context import SimpleRunContext
from vmt.backends.shard_writer import ShardWriter
from vmt.config import Settings, load_settings
from vmt.domain import Box, Rejection, Sample, Split
from vmt.formats.shard_layout import ShardManifest, read_shard

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-token-value"


class _Origin(BaseHTTPRequestHandler):
    """``GET /img/N.png``: a PNG N pixels wide (``/slow/...`` the same after ``delay`` s);
    anything else 404. Records the paths asked for."""

    hits: list[str]
    delay: float

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.hits.append(path)
        kind, _, name = path.strip("/").partition("/")
        if kind not in ("img", "slow") or not name.endswith(".png"):
            self.send_error(404)
            return
        if kind == "slow":
            time.sleep(self.delay)
        body = _png(int(name.removesuffix(".png")))
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _png(width: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, 10), (width % 256, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def origin() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("H", (_Origin,), {"hits": hits, "delay": 0.3})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    with storage_emulator() as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        yield url, emulator_storage_client(url)


def _settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "gcs_bucket": BUCKET,
        "gcp_project": "p",
        "gcp_anonymous_credentials": True,
        "staging_concurrency": 4,
        "staging_processes": 1,
        "shard_size": 3,
        "outbound_allow": ["127.0.0.1"],
        "outbound_allow_http": True,
    }
    return load_settings(**{**base, **overrides})


def _rows(origin: str, count: int, *, kind: str = "img") -> list[Sample]:
    splits = [Split.TRAINING, Split.TRAINING, Split.VALIDATION]
    return [
        Sample(
            f"row{i}",
            f"{origin}/{kind}/{20 + i}.png",
            None,
            None,
            splits[i % 3],
            boxes=(Box(f"c{i % 4}", 1.0, 2.0, 3.0 + i, 4.0),),
            line=i + 1,
        )
        for i in range(count)
    ]


def _shards(client: Any, run_id: str) -> dict[str, bytes]:
    prefix = f"vmt/{run_id}/shards/"
    return {
        b.name[len(prefix) :]: b.download_as_bytes()
        for b in client.list_blobs(BUCKET, prefix=prefix)
    }


def test_shards_hold_every_good_row_and_bad_rows_are_rejected(
    origin: tuple[str, list[str]], storage: tuple[str, Any], tmp_path: Path
) -> None:
    base, _ = origin
    _, client = storage
    rows = _rows(base, 10)
    rows[4] = Sample("bad", f"{base}/missing.png?token={SECRET}", None, None, Split.TRAINING,
                     line=5)  # fmt: skip
    rows[7] = Sample("secret", base.replace("//", f"//user:{SECRET}@") + "/gone.png", None,
                     None, Split.TRAINING, line=8)  # fmt: skip
    ctx = SimpleRunContext("r1", tmp_path / "work")
    writer = ShardWriter(_settings(), storage_client=client)

    out = list(writer.write(ctx, rows))

    assert writer.folder("r1") == f"gs://{BUCKET}/vmt/r1/shards"
    rejected = {r.data_row_id: r for r in out if isinstance(r, Rejection)}
    assert {k: (r.line, r.reason) for k, r in rejected.items()} == {
        "bad": (5, "image_fetch_failed"),
        "secret": (8, "image_fetch_failed"),
    }
    assert all(SECRET not in r.detail for r in rejected.values())
    assert all(SECRET not in str(event) for event in ctx.events)
    good = [r for r in out if isinstance(r, Sample)]
    assert len(good) + len(rejected) == len(rows)
    assert all(s.mime_type == "image/png" and s.height == 10 for s in good)

    files = _shards(client, "r1")
    manifest = ShardManifest.from_json(files["manifest.json"])
    assert manifest.classes == ("c0", "c1", "c2", "c3")
    training = [r for r in rows if r.split is Split.TRAINING]  # 7 rows: shards of 3, 3, 1
    assert manifest.splits["training"].shards == (
        "training-000000.tar", "training-000001.tar", "training-000002.tar"
    )  # fmt: skip
    assert manifest.splits["training"].samples == 5
    assert manifest.splits["validation"].samples == 3
    records = [
        record
        for name in manifest.splits["training"].shards
        for record in read_shard(io.BytesIO(files[name]))
    ]
    by_row = {s.data_row_id: s for s in training if s.data_row_id not in rejected}
    assert [r.data_row_id for r in records] == list(by_row)
    # keys are positions within the split: the rejected rows (positions 3 and 5) leave gaps
    assert [r.key for r in records] == ["000000000", "000000001", "000000002", "000000004",
                                        "000000006"]  # fmt: skip
    for record in records:
        sample = by_row[record.data_row_id]
        assert record.image == _png(int(sample.image_uri.rsplit("/", 1)[1][:-4]))
        assert (record.extension, record.height) == ("png", 10)
        assert record.boxes == sample.boxes


def test_a_killed_writer_resumes_keeping_finished_shards(
    origin: tuple[str, list[str]], storage: tuple[str, Any], tmp_path: Path
) -> None:
    base, hits = origin
    url, client = storage
    rows = _rows(base, 12, kind="slow")  # 8 training rows (3 shards), 4 validation (2)
    script = (
        "import sys, pickle\n"
        "from tests.fakes.simple_run_context import SimpleRunContext\n"
        "from vmt.backends.shard_writer import ShardWriter\n"
        "settings, rows, work = pickle.loads(sys.stdin.buffer.read())\n"
        "for _ in ShardWriter(settings).write(SimpleRunContext('r2', work), rows):\n"
        "    pass\n"
    )
    import pickle

    env = dict(os.environ, STORAGE_EMULATOR_HOST=url,
               PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}")  # fmt: skip
    settings = _settings(staging_concurrency=1)
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, env=env)
    assert child.stdin is not None
    child.stdin.write(pickle.dumps((settings, rows, tmp_path / "w1")))
    child.stdin.close()
    first = "vmt/r2/shards/training-000000.tar"
    deadline = time.monotonic() + 60
    while client.bucket(BUCKET).get_blob(first) is None:
        assert child.poll() is None, "the writer ended before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    generation = client.bucket(BUCKET).get_blob(first).generation
    assert client.bucket(BUCKET).get_blob("vmt/r2/shards/manifest.json") is None
    hits.clear()

    ctx = SimpleRunContext("r2", tmp_path / "w2")
    out = list(ShardWriter(_settings(), storage_client=client).write(ctx, rows))

    assert [s.data_row_id for s in out] == [r.data_row_id for r in _shard_order(rows, 3)]
    assert all(isinstance(s, Sample) and s.width for s in out)
    assert client.bucket(BUCKET).get_blob(first).generation == generation
    kept_rows = {f"/slow/{20 + i}.png" for i in (0, 1, 3)}  # training shard 0
    assert kept_rows.isdisjoint(hits) and len(hits) == 12 - 3
    assert ctx.events[-1][1]["kept"] >= 1
    manifest = ShardManifest.from_json(_shards(client, "r2")["manifest.json"])
    assert (manifest.splits["training"].samples, manifest.splits["validation"].samples) == (8, 4)


def _shard_order(rows: list[Sample], size: int) -> list[Sample]:
    """The order ``write`` yields rows in: full shards as they fill, then each split's rest."""
    out: list[Sample] = []
    filling: dict[Split, list[Sample]] = {}
    for row in rows:
        filling.setdefault(row.split, []).append(row)
        if len(filling[row.split]) == size:
            out += filling.pop(row.split)
    for rest in filling.values():
        out += rest
    return out


def test_worker_processes_write_the_same_shards_as_one_process(
    origin: tuple[str, list[str]], storage: tuple[str, Any], tmp_path: Path
) -> None:
    base, _ = origin
    _, client = storage
    rows = _rows(base, 14)
    rows[2] = Sample("bad", f"{base}/nope.png", None, None, Split.VALIDATION, line=3)
    one = list(
        ShardWriter(_settings(), storage_client=client).write(
            SimpleRunContext("one", tmp_path / "a"), rows
        )
    )
    two = list(
        ShardWriter(_settings(staging_processes=2), storage_client=client).write(
            SimpleRunContext("two", tmp_path / "b"), rows
        )
    )

    assert two == one
    assert _shards(client, "two") == _shards(client, "one")
    assert len(_shards(client, "one")) == 2 * 6 + 1  # 6 shards and their rows files, manifest
    rows_file = json.loads(_shards(client, "one")["validation-000000.tar.rows.json"])
    assert rows_file["outcomes"][0] == {
        "reason": "image_fetch_failed", "detail": f"HTTP 404 for {base}/nope.png"
    }  # fmt: skip
    assert [isinstance(r, Rejection) for r in one].count(True) == 1
