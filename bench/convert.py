"""Benchmark of `vmt convert` (issue 2): rows/s against its baselines, and peak memory.

    .venv/bin/python bench/convert.py                   # everything (1M-row RSS part included)
    .venv/bin/python bench/convert.py --skip-cli        # in-process parts only

1. In process, on a synthetic model-run export (--rows, default 100k rows, 1-12 boxes each):
   the convert core (`convert_export`: parse, check, clip, write the Vertex file) against
   orjson-parse-only of the same file (read lines + orjson.loads), and against building
   Labelbox SDK annotation objects (`labelbox.types.ObjectAnnotation` + `Rectangle`) for a
   sample of the rows (`--sdk-rows`).
2. Subprocesses, on a --cli-rows file (default 500k): the whole `vmt convert` command against a
   parse-only script, wall clock.
3. Peak RSS (getrusage of the child) of `vmt convert` on --rss-rows files (default 100k and 1M).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vmt.formats.conversion_stats import ConversionStats  # noqa: E402
from vmt.formats.labelbox_export import ExportOptions, parse_export_rows  # noqa: E402
from vmt.formats.labelbox_to_vertex import convert_export  # noqa: E402

CLASSES = ["car", "truck", "bus", "pedestrian", "cyclist", "traffic light", "stop sign", "dog"]
_OBJECT = (
    '{{"feature_id":"{fid}","feature_schema_id":"{sid}","name":"{name}",'
    '"annotation_kind":"ImageBoundingBox","classifications":[],'
    '"bounding_box":{{"top":{top:.1f},"left":{left:.1f},"height":{h:.1f},"width":{w:.1f}}}}}'
)
_ROW = (
    '{{"data_row":{{"id":"{id}","global_key":"{gk}","external_id":"{gk}",'
    '"row_data":"gs://bench-bucket/images/{gk}","details":{{"dataset_id":"cl0dataset000000000000001",'
    '"dataset_name":"street scenes","created_at":"2024-03-01T10:00:00.000+00:00",'
    '"updated_at":"2024-03-01T10:00:00.000+00:00","last_activity_at":"2024-03-02T08:00:00.000+00:00",'
    '"created_by":"labeler@example.com"}}}},'
    '"media_attributes":{{"height":{H},"width":{W},"mime_type":"image/jpeg"}},'
    '"experiments":{{"cl0model00000000000000001":{{"name":"detector",'
    '"runs":{{"cl0run0000000000000000001":{{"name":"run 1","split":"{split}",'
    '"labels":[{{"id":"{lid}","annotations":{{"objects":[{objects}],'
    '"classifications":[],"relationships":[]}}}}],"predictions":[]}}}}}}}}}}'
)


def generate_export(path: Path, rows: int, *, seed: int = 0) -> Path:
    """A model-run export shaped like the documented one: 1-12 boxes per row, 80/10/10."""
    rng = random.Random(seed)
    splits = ["training"] * 8 + ["validation", "test"]
    with path.open("w", encoding="utf-8", buffering=1 << 20) as out:
        for i in range(rows):
            width, height = rng.choice(((1920, 1080), (1280, 720), (2560, 1707), (640, 480)))
            objects = []
            for j in range(rng.randint(1, 12)):
                w = rng.uniform(0.02, 0.4) * width
                h = rng.uniform(0.02, 0.4) * height
                objects.append(
                    _OBJECT.format(
                        fid=f"cl{i:012d}{j:04d}feat00",
                        sid=f"cl0schema00000000000000{j % 8:02d}",
                        name=CLASSES[rng.randrange(len(CLASSES))],
                        top=rng.uniform(-0.02, 1.0) * (height - h),
                        left=rng.uniform(-0.02, 1.0) * (width - w),
                        h=h,
                        w=w,
                    )
                )
            out.write(
                _ROW.format(
                    id=f"cl{i:015d}row0000000",
                    gk=f"img-{i:07d}.jpg",
                    lid=f"cl{i:015d}lab0000000",
                    W=width,
                    H=height,
                    split=splits[rng.randrange(10)],
                    objects=",".join(objects),
                )
            )
            out.write("\n")
    return path


def parse_only(path: Path) -> int:
    rows = 0
    loads = orjson.loads
    with path.open("rb", buffering=1 << 20) as lines:
        for line in lines:
            loads(line)
            rows += 1
    return rows


def parser_only(path: Path) -> int:
    """The parser with every row check, no output (where the time goes, step 2 of 3)."""
    stats = ConversionStats()
    with path.open("rb", buffering=1 << 20) as lines:
        for _ in parse_export_rows(lines, ExportOptions(), stats):
            pass
    return stats.rows_read


def convert_core(path: Path, out_path: Path) -> int:
    with path.open("rb", buffering=1 << 20) as lines, out_path.open("wb", buffering=1 << 20) as out:
        stats = convert_export(lines, out)
    return stats.rows_read


def sdk_objects(path: Path, limit: int) -> int:
    """Labelbox SDK annotation objects for the first ``limit`` rows (what the SDK route costs)."""
    import labelbox.types as lb_types

    rows = 0
    with path.open("rb") as lines:
        for line in lines:
            row = orjson.loads(line)
            run = next(iter(next(iter(row["experiments"].values()))["runs"].values()))
            annotations = [
                lb_types.ObjectAnnotation(
                    name=obj["name"],
                    value=lb_types.Rectangle(
                        start=lb_types.Point(x=bb["left"], y=bb["top"]),
                        end=lb_types.Point(x=bb["left"] + bb["width"], y=bb["top"] + bb["height"]),
                    ),
                )
                for obj in run["labels"][0]["annotations"]["objects"]
                for bb in [obj["bounding_box"]]
            ]
            lb_types.Label(
                data={"global_key": row["data_row"]["global_key"]}, annotations=annotations
            )
            rows += 1
            if rows == limit:
                break
    return rows


def best_rate(fn: Callable[[], int], repeat: int) -> float:
    """Rows per CPU second of this process (best of ``repeat``): robust on a shared machine."""
    best = float("inf")
    rows = 0
    for _ in range(repeat):
        start = time.process_time()
        rows = fn()
        best = min(best, time.process_time() - start)
    return rows / best


def run_child(command: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{command} exited {child.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


_PARSE_ONLY_SCRIPT = """
import sys, orjson
loads = orjson.loads
with open(sys.argv[1], "rb", buffering=1 << 20) as lines:
    for line in lines:
        loads(line)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sdk-rows", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cli-rows", type=int, default=500_000)
    parser.add_argument("--rss-rows", default="100000,1000000")
    parser.add_argument("--skip-cli", action="store_true", help="in-process parts only")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        export = generate_export(work / f"export-{args.rows}.ndjson", args.rows)
        size_mb = export.stat().st_size / 1e6
        print(f"synthetic export: {args.rows} rows, {size_mb:.0f} MB, 1-12 boxes per row")
        parse_rate = best_rate(lambda: parse_only(export), args.repeat)
        parser_rate = best_rate(lambda: parser_only(export), args.repeat)
        core_rate = best_rate(lambda: convert_core(export, work / "out.jsonl"), args.repeat)
        sdk_rate = best_rate(lambda: sdk_objects(export, args.sdk_rows), 1)
        print(f"in process, rows per CPU second (best of {args.repeat}):")
        print(f"  orjson parse only        {parse_rate:>9,.0f} rows/s   1.00x")
        ratio = parser_rate / parse_rate
        print(f"  parser, every row check  {parser_rate:>9,.0f} rows/s   {ratio:.2f}x")
        print(
            f"  convert core (to file)   {core_rate:>9,.0f} rows/s   {core_rate / parse_rate:.2f}x"
        )
        print(
            f"  labelbox.types objects   {sdk_rate:>9,.0f} rows/s   {sdk_rate / parse_rate:.3f}x"
            f"  (first {args.sdk_rows} rows; convert core is {core_rate / sdk_rate:.0f}x faster)"
        )
        if args.skip_cli:
            return

        export.unlink()
        cli_export = generate_export(work / "export-cli.ndjson", args.cli_rows)
        cli_size_mb = cli_export.stat().st_size / 1e6
        out = work / "out.jsonl"
        vmt = [sys.executable, "-m", "vmt", "convert", str(cli_export), "-o", str(out)]
        script = work / "parse_only.py"
        script.write_text(_PARSE_ONLY_SCRIPT)
        parse_wall, parse_cpu, _ = run_child([sys.executable, str(script), str(cli_export)])
        vmt_wall, vmt_cpu, _ = run_child(vmt)
        print(f"subprocesses, {args.cli_rows:,} rows ({cli_size_mb:.0f} MB):")
        for name, wall, cpu in (
            ("parse-only script", parse_wall, parse_cpu),
            ("vmt convert", vmt_wall, vmt_cpu),
        ):
            print(
                f"  {name:18s} wall {wall:6.1f} s   CPU {cpu:6.1f} s   "
                f"{args.cli_rows / cpu:>9,.0f} rows per CPU s   {parse_cpu / cpu:.2f}x"
            )
        cli_export.unlink()

        print("peak RSS of vmt convert (getrusage of the child):")
        for rows in (int(n) for n in args.rss_rows.split(",")):
            rss_export = generate_export(work / f"export-rss-{rows}.ndjson", rows)
            wall, cpu, peak = run_child(
                [sys.executable, "-m", "vmt", "convert", str(rss_export), "-o", str(out)]
            )
            size_gb = rss_export.stat().st_size / 1e9
            times = f"wall {wall:.0f} s, CPU {cpu:.0f} s"
            print(f"  {rows:>9,} rows ({size_gb:.1f} GB): peak RSS {peak} MiB   ({times})")
            rss_export.unlink()


if __name__ == "__main__":
    main()
