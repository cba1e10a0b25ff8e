"""Prepare at scale: a synthetic export's rows packed into training shards, at 100k and 1M rows.

Rows are made lazily (80/10/10 training/validation/test, two boxes each); every row's image is
the same tiny PNG (a 16x16 local file, 100 bytes), so the bench measures the writer (reading
rows, fetching through ``ImageFetcher``, tar packing, rows files, uploads, worker processes),
not image bytes; one row in 100,000 names a missing file and must come back as a rejection.
Shards are uploaded through google-cloud-storage to the local GCS fake of
``bench/gcs_upload_fake.py`` (its own process, not counted), ``shard_size`` 1000.

Each size runs in a fresh child process. Printed per size: wall time, CPU (user+sys of the
child and every process under it, the worker processes and the fork server, less the child's
interpreter start and imports), peak RSS of the child itself, and the peak of the summed PSS
of the child and all its workers (sampled every 0.2 s; shared pages split between the
processes sharing them); then the row counts (in = written +
rejected, the manifest's sample counts equal to the rows written).

    .venv/bin/python bench/shards.py [--rows 100000 1000000] [--processes 0] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from process_tree import MemorySampler, become_subreaper, reap_orphans

ROOT = Path(__file__).resolve().parents[1]
MISSING_EVERY = 100_000


class _BenchContext:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.workdir = Path()
        self.events: list[tuple[str, dict[str, object]]] = []

    def get_handle(self, key: str) -> str | None:
        return None

    def set_handle(self, key: str, value: str) -> None:
        return None

    def event(self, message: str, **data: object) -> None:
        self.events.append((message, data))

    def progress(self, done: int, total: int | None = None, *, what: str = "") -> None:
        return None

    def check_cancelled(self) -> None:
        return None


def _rows(count: int, image: Path) -> Iterator[Any]:
    from vmt.domain import Box, Sample, Split

    splits = [Split.TRAINING] * 8 + [Split.VALIDATION, Split.TEST]
    for i in range(count):
        uri = str(image) if i % MISSING_EVERY != MISSING_EVERY - 1 else f"{image}.missing"
        boxes = (Box(f"c{i % 7}", 1.0, 1.0, 8.0, 9.0), Box(f"c{(i + 3) % 7}", 2.0, 3.0, 15.0, 14.0))
        yield Sample(f"row{i:07d}", uri, None, None, splits[i % 10], boxes=boxes, line=i + 2)


def _child(args: argparse.Namespace) -> None:
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{args.gcs_port}"
    from PIL import Image

    from vmt.backends.shard_writer import ShardWriter
    from vmt.config import Settings
    from vmt.domain import Rejection
    from vmt.formats.outbound_policy import OutboundRules

    folder = Path(tempfile.mkdtemp(prefix="vmt-bench-shards-"))
    image = folder / "tiny.png"
    Image.new("RGB", (16, 16), (10, 200, 30)).save(image, format="PNG")
    settings = Settings(
        gcs_bucket="bench",
        gcp_project="bench",
        gcp_anonymous_credentials=True,
        staging_processes=args.processes,
        staging_concurrency=args.concurrency,
        shard_size=1000,
    )
    writer = ShardWriter(settings, rules=OutboundRules.export_file())
    ctx = _BenchContext(f"shards-{args.rows}-{os.getpid()}")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    written = rejected = 0
    for result in writer.write(ctx, _rows(args.rows, image)):
        if isinstance(result, Rejection):
            rejected += 1
        else:
            written += 1
    wall = time.perf_counter() - wall0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    manifest = _manifest(settings, ctx.run_id)
    print(json.dumps({
        "written": written, "rejected": rejected, "wall_s": wall, "setup_cpu_s": cpu0,
        "peak_rss_mb": peak_mb, "manifest_samples": manifest["samples"],
        "shards": manifest["shards"],
    }))  # fmt: skip


def _manifest(settings: Any, run_id: str) -> dict[str, int]:
    from vmt.backends.gcs import build_storage_client, run_prefix
    from vmt.formats.shard_layout import ShardManifest

    client = build_storage_client(settings, pool_size=2)
    name = f"{run_prefix(settings, run_id)}/shards/manifest.json"
    manifest = ShardManifest.from_json(client.bucket("bench").blob(name).download_as_bytes())
    return {
        "samples": sum(s.samples for s in manifest.splits.values()),
        "shards": sum(len(s.shards) for s in manifest.splits.values()),
    }


def _measure(rows: int, args: argparse.Namespace, gcs_port: str, keep: set[int]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", "--rows", str(rows), "--processes",
               str(args.processes), "--concurrency", str(args.concurrency),
               "--gcs-port", gcs_port]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    sampler = MemorySampler(child.pid, keep)
    out, _ = child.communicate()
    reap_orphans(keep)
    tree_peak = sampler.stop()
    if child.returncode != 0:
        raise SystemExit(f"{rows} rows failed (exit {child.returncode})")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["cpu_s"] = total - result["setup_cpu_s"]
    result["tree_peak_mb"] = tree_peak
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--processes", type=int, default=0, help="0: one per CPU core")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--gcs-port")
    args = parser.parse_args()
    if args.child:
        args.rows = args.rows[0]
        _child(args)
        return
    become_subreaper()
    servers = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "gcs_upload_fake.py"), "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert servers.stdout is not None
        gcs_port = servers.stdout.readline().split()[1]
        results = []
        for rows in args.rows:
            load = os.getloadavg()[0]
            results.append((rows, load, _measure(rows, args, gcs_port, {servers.pid})))
    finally:
        if servers.stdin:
            servers.stdin.close()
        servers.wait(timeout=30)
    processes = args.processes or len(os.sched_getaffinity(0))
    print(f"shards from a synthetic export (one 16x16 PNG per row, local file), {processes} "
          f"processes x {-(-args.concurrency // processes)} threads, shard_size 1000, "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(f"{'rows':>9}{'load':>6}{'wall s':>9}{'rows/s':>9}{'CPU s':>8}{'CPU us/row':>11}"
          f"{'main RSS MB':>12}{'all PSS MB':>11}{'shards':>8}{'rejected':>9}")  # fmt: skip
    for rows, load, r in results:
        assert r["written"] + r["rejected"] == rows, r
        assert r["manifest_samples"] == r["written"], r
        assert r["rejected"] == rows // MISSING_EVERY, r
        print(f"{rows:>9}{load:>6.1f}{r['wall_s']:>9.1f}{rows / r['wall_s']:>9.0f}"
              f"{r['cpu_s']:>8.1f}{r['cpu_s'] * 1e6 / rows:>11.0f}{r['peak_rss_mb']:>12.0f}"
              f"{r['tree_peak_mb']:>11.0f}{r['shards']:>8}{r['rejected']:>9}")  # fmt: skip
    print("rows in = written + rejected at every size; manifest samples = rows written")


if __name__ == "__main__":
    main()
