"""Image staging: vmt's streaming stager vs the original approach, in one run.

2,000 images of ~150 KB from a local HTTP origin that adds 50 ms per request, uploaded through
google-cloud-storage to a local fake of the GCS JSON API upload route that also adds 50 ms per
request (bench/gcs_upload_fake.py, in its own process so its CPU is not counted).

- original: 8 threads; download, decode + re-encode with PIL, upload_from_string.
- vmt:      ``ImageStager``: ``staging_processes`` worker processes (default: one per core)
            sharing ``staging_concurrency`` threads (default 64); type sniffed from the first
            bytes, no re-encode of JPEG/PNG.

Each approach runs in a fresh child process, which reports its wall time and peak RSS. CPU time
is user+sys of the child and every process under it (the worker processes, the fork server),
measured here from the kernel's accounting of reaped children (this process is their
subreaper, so orphans are reaped here too). The load average is printed before and after:
on a shared machine other work slows every instruction, CPU per image included.

    .venv/bin/python bench/staging.py [--images 2000] [--latency 0.05] [--concurrency 64]
                                      [--processes N] [--repeat 3]

The vmt approach runs ``--repeat`` times (the original once: it takes ten times as long);
the speed-up is the original's wall time over the median vmt run's, and CPU per image is given
as the median and the least of the vmt runs (each line shows the load average it started at).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from process_tree import become_subreaper, reap_orphans

ROOT = Path(__file__).resolve().parents[1]


class _BenchContext:
    def __init__(self, run_id: str, workdir: Path) -> None:
        self.run_id = run_id
        self.workdir = workdir

    def get_handle(self, key: str) -> str | None:
        return None

    def set_handle(self, key: str, value: str) -> None:
        return None

    def event(self, message: str, **data: object) -> None:
        return None

    def progress(self, done: int, total: int | None = None, *, what: str = "") -> None:
        return None

    def check_cancelled(self) -> None:
        return None


def _run_vmt(origin: str, images: int, concurrency: int, processes: int) -> int:
    from vmt.domain import Sample, Split

    samples = (
        Sample(f"row{i}", f"{origin}/img/{i}.jpg", None, None, Split.TRAINING)
        for i in range(images)
    )
    return _stage(concurrency, processes, f"vmt-{os.getpid()}", samples)


def _stage(concurrency: int, processes: int, run_id: str, samples: Any) -> int:
    """Rows an ``ImageStager`` staged (the rest rejected) into the bench bucket."""
    from vmt.backends.gcs import ImageStager
    from vmt.config import Settings
    from vmt.domain import Sample

    settings = Settings(
        gcs_bucket="bench",
        gcp_project="bench",
        gcp_anonymous_credentials=True,
        staging_concurrency=concurrency,
        staging_processes=processes,
        outbound_allow=["127.0.0.1"],
        outbound_allow_http=True,
    )
    stager = ImageStager(settings)
    try:
        return sum(1 for r in stager.stage(_BenchContext(run_id, Path()), samples)
                   if isinstance(r, Sample))  # fmt: skip
    finally:
        stager.close()


def _run_cloud(gcs: str, images: int, concurrency: int, processes: int) -> int:
    """Rows whose images are already in Cloud Storage (``gs://`` and https URLs of objects):
    copied by objects.rewrite, only their first bytes read here. Returns the rows staged."""
    from vmt.domain import Sample, Split

    forms = ("gs://bench/theirs/{}.jpg", "https://storage.googleapis.com/bench/theirs/{}.jpg")
    samples = (
        Sample(f"row{i}", forms[i % 2].format(i), None, None, Split.TRAINING) for i in range(images)
    )
    return _stage(concurrency, processes, f"cloud-{os.getpid()}", samples)


def _counters(gcs: str) -> dict[str, int]:
    import urllib.request

    with urllib.request.urlopen(f"{gcs}/counters", timeout=30) as response:
        counted: dict[str, int] = json.loads(response.read())
    return counted


def _run_original(origin: str, images: int) -> int:
    import requests
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from PIL import Image

    bucket = storage.Client(project="bench", credentials=AnonymousCredentials()).bucket("bench")

    def copy(i: int) -> bool:
        response = requests.get(f"{origin}/img/{i}.jpg", timeout=60)
        response.raise_for_status()
        image = Image.open(io.BytesIO(response.content))
        out = io.BytesIO()
        image.save(out, format="JPEG")
        bucket.blob(f"original/images/row{i}.jpg").upload_from_string(
            out.getvalue(), content_type="image/jpeg"
        )
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        return sum(pool.map(copy, range(images)))


def _child(args: argparse.Namespace) -> None:
    origin = f"http://127.0.0.1:{args.origin_port}"
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{args.gcs_port}"
    # Import the SDKs and modules before timing: a start-up cost, not a per-image one.
    import google.cloud.storage  # noqa: F401
    import requests  # noqa: F401
    from PIL import Image  # noqa: F401

    import vmt.backends.gcs  # noqa: F401

    wall0, cpu0 = time.perf_counter(), time.process_time()
    gcs = os.environ["STORAGE_EMULATOR_HOST"]
    counted = _counters(gcs)
    if args.child == "vmt":
        ok = _run_vmt(origin, args.images, args.concurrency, args.processes)
    elif args.child == "cloud":
        ok = _run_cloud(gcs, args.images, args.concurrency, args.processes)
    else:
        ok = _run_original(origin, args.images)
    wall = time.perf_counter() - wall0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    after = _counters(gcs)
    moved = {key: after[key] - counted.get(key, 0) for key in after}
    print(json.dumps({"ok": ok, "wall_s": wall, "setup_cpu_s": cpu0, "peak_rss_mb": peak_mb,
                      "cloud": moved}))  # fmt: skip


def _measure(
    name: str, args: argparse.Namespace, ports: list[str], keep: set[int]
) -> dict[str, Any]:
    """Run one approach's child; its result with ``cpu_s`` (it and all its descendants) and
    ``peak_rss_mb`` of the child itself."""
    command = [sys.executable, __file__, "--child", name, "--images", str(args.images),
               "--concurrency", str(args.concurrency), "--processes", str(args.processes),
               "--origin-port", ports[0], "--gcs-port", ports[1]]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    reap_orphans(keep)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["cpu_s"] = total - result["setup_cpu_s"]  # interpreter start and SDK imports
    result["load"] = load
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--processes", type=int, default=0, help="0: one per CPU core")
    parser.add_argument("--repeat", type=int, default=3, help="vmt runs (one original run)")
    parser.add_argument("--child", choices=["vmt", "original", "cloud"])
    parser.add_argument("--origin-port")
    parser.add_argument("--gcs-port")
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    become_subreaper()
    load_before = os.getloadavg()
    servers = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "gcs_upload_fake.py"), str(args.latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert servers.stdout is not None
        ports = servers.stdout.readline().split()
        keep = {servers.pid}
        runs: list[tuple[str, dict[str, Any]]] = [
            ("original", _measure("original", args, ports, keep))
        ]
        for _ in range(args.repeat):
            runs.append(("vmt", _measure("vmt", args, ports, keep)))
        cloud = _measure("cloud", args, ports, keep)
    finally:
        if servers.stdin:
            servers.stdin.close()
        servers.wait(timeout=30)
    load_after = os.getloadavg()
    processes = args.processes or len(os.sched_getaffinity(0))
    print(f"staging {args.images} images (~150 KB), {args.latency * 1000:.0f} ms per request "
          f"at the origin and at GCS; {os.cpu_count()} cores, load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after")  # fmt: skip
    print(f"{'approach':<34}{'wall s':>8}{'images/s':>10}{'CPU ms/img':>12}{'peak RSS MB':>13}"
          f"{'load':>6}")  # fmt: skip
    labels = {"original": "original (8 threads, re-encode)",
              "vmt": f"vmt ({processes} proc, {args.concurrency} threads)"}  # fmt: skip
    for name, r in runs:
        assert r["ok"] == args.images, f"{name}: only {r['ok']} of {args.images} staged"
        print(f"{labels[name]:<34}{r['wall_s']:>8.2f}{args.images / r['wall_s']:>10.0f}"
              f"{r['cpu_s'] * 1000 / args.images:>12.2f}{r['peak_rss_mb']:>13.0f}"
              f"{r['load']:>6.1f}")  # fmt: skip
    vmt = [r for name, r in runs if name == "vmt"]
    original_wall = runs[0][1]["wall_s"]
    walls = sorted(r["wall_s"] for r in vmt)
    ratio = original_wall / walls[len(walls) // 2]
    assert cloud["ok"] == args.images, f"cloud: only {cloud['ok']} of {args.images} staged"
    moved = cloud["cloud"]
    sent, reads = moved.get("media_bytes_sent", 0), moved.get("media_requests", 0)
    print(
        f"Cloud Storage sources ({args.images} rows, half gs://, half https URLs of objects): "
        f"{moved.get('rewrites', 0)} objects.rewrite copying "
        f"{moved.get('rewritten_bytes', 0):,} bytes inside Cloud Storage, "
        f"{cloud['wall_s']:.2f} s, {cloud['cpu_s'] * 1000 / args.images:.2f} ms CPU/row"
    )
    print(
        f"  their bytes through this machine: {sent:,} downloaded in {reads} ranged reads "
        f"(largest {sent / max(reads, 1):,.0f} on average: the first 4 KiB, the header), "
        f"{moved.get('uploads', 0)} uploads ({moved.get('uploaded_bytes', 0):,} bytes)"
    )
    assert sent <= 4096 * reads and moved.get("uploads", 0) == 0, moved
    cpus = sorted(r["cpu_s"] * 1000 / args.images for r in vmt)
    best = original_wall / walls[0]
    print(f"speed-up (original / median vmt wall): {ratio:.1f}x, best {best:.1f}x"
          f" (target >= 10x); vmt CPU per image: median {cpus[len(cpus) // 2]:.2f} ms, "
          f"least {cpus[0]:.2f} ms (target <= 1.5 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
