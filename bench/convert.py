"""Benchmark of `vmt convert` (issues 2, 11: one code path, the reference one): rows/s against
an orjson parse-only baseline measured in the same run, and peak memory.

    .venv/bin/python bench/convert.py                   # everything (1M-row RSS part included)
    .venv/bin/python bench/convert.py --parts cli,rss   # the two figures docs/benchmarks.md keeps

1. In process, on a synthetic model-run export (--rows, default 100k rows, 1-12 boxes each):
   the convert core (`convert_export`: parse, check, clip, write the Vertex file) and the export
   parser alone against orjson-parse-only of the same file (read lines + orjson.loads), and
   against building Labelbox SDK annotation objects for a sample of the rows (`--sdk-rows`).
2. Subprocesses, on a --cli-rows file (default 500k): the whole `vmt convert` command against a
   parse-only script, CPU seconds (user + system) of each child; --cli-repeat alternating runs
   of each, the best (least CPU) and the median shown, and every run.
3. Peak RSS (getrusage of the child) of `vmt convert` on --rss-rows files (default 100k and 1M).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vmt.formats.conversion_stats import ConversionStats  # noqa: E402
from vmt.formats.export_options import ExportOptions  # noqa: E402
from vmt.formats.json_records import ndjson_records  # noqa: E402
from vmt.formats.labelbox_export import parse_export_rows  # noqa: E402
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
    """The reference parser with every row check, no output."""
    stats = ConversionStats()
    with path.open("rb", buffering=1 << 20) as lines:
        for _ in parse_export_rows(ndjson_records(lines), ExportOptions(), stats):
            pass
    return stats.rows_read


def reference_core(path: Path, out_path: Path) -> int:
    with path.open("rb", buffering=1 << 20) as lines, out_path.open("wb", buffering=1 << 20) as out:
        stats = convert_export(ndjson_records(lines), out)
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


_MEASURE = """
import json, os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps([time.perf_counter() - start, usage.ru_utime, usage.ru_stime,
                  usage.ru_maxrss // 1024, os.waitstatus_to_exitcode(status)]))
"""


class ChildRun(NamedTuple):
    wall: float
    user: float
    system: float
    peak_mib: int

    @property
    def cpu(self) -> float:
        return self.user + self.system


def run_child(command: list[str]) -> ChildRun:
    """Wall seconds, CPU seconds (user, system) and peak RSS (MiB) of one child process.

    Measured by a small launcher process: a child forked straight from this (large) process
    would report this process's RSS as its own peak.
    """
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    wall, user, system, peak, code = json.loads(result.stdout)
    if code != 0:
        raise SystemExit(f"{command} exited {code}: {result.stderr[-500:]}")
    return ChildRun(wall, user, system, peak)


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
    parser.add_argument("--cli-repeat", type=int, default=3)
    parser.add_argument("--rss-rows", default="100000,1000000")
    parser.add_argument("--parts", default="inprocess,cli,rss", help="which parts to run")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        if "inprocess" in parts:
            in_process(work, rows=args.rows, sdk_rows=args.sdk_rows, repeat=args.repeat)
        if "cli" in parts:
            command_vs_parse_script(work, rows=args.cli_rows, repeat=args.cli_repeat)
        if "rss" in parts:
            peak_rss(work, [int(n) for n in args.rss_rows.split(",")])


def in_process(work: Path, *, rows: int, sdk_rows: int, repeat: int) -> None:
    export = generate_export(work / f"export-{rows}.ndjson", rows)
    size_mb = export.stat().st_size / 1e6
    print(f"synthetic export: {rows:,} rows, {size_mb:.0f} MB, 1-12 boxes per row")
    parse_rate = best_rate(lambda: parse_only(export), repeat)
    parser_rate = best_rate(lambda: parser_only(export), repeat)
    core_rate = best_rate(lambda: reference_core(export, work / "out.jsonl"), repeat)
    sdk_objects(export, 50)  # warm-up: the SDK's pydantic models build validators on first use
    sdk_rate = best_rate(lambda: sdk_objects(export, sdk_rows), 1)
    print(f"in process, rows per CPU second (best of {repeat}):")
    print(f"  orjson parse only        {parse_rate:>9,.0f} rows/s   1.00x")
    print(f"  convert core (to file)   {core_rate:>9,.0f} rows/s   {core_rate / parse_rate:.2f}x")
    print(
        f"  reference parser alone   {parser_rate:>9,.0f} rows/s   {parser_rate / parse_rate:.2f}x"
    )
    print(
        f"  labelbox.types objects   {sdk_rate:>9,.0f} rows/s   {sdk_rate / parse_rate:.3f}x"
        f"  (first {sdk_rows:,} rows; the convert core is {core_rate / sdk_rate:.0f}x faster)"
    )
    export.unlink()


def command_vs_parse_script(work: Path, *, rows: int, repeat: int) -> None:
    """Alternate the two commands ``repeat`` times. The system time of ``vmt convert`` varies
    from run to run (it writes the output, ~0.4x the input: on a VM, page-cache pages the host
    has reclaimed cost far more to touch again); best and median of each are shown."""
    export = generate_export(work / "export-cli.ndjson", rows)
    size_mb = export.stat().st_size / 1e6
    script = work / "parse_only.py"
    script.write_text(_PARSE_ONLY_SCRIPT)
    parse_runs: list[ChildRun] = []
    vmt_runs: list[ChildRun] = []
    for _ in range(repeat):
        parse_runs.append(run_child([sys.executable, str(script), str(export)]))
        vmt_runs.append(run_child(_vmt_convert(export, work)))
    parse_best = min(run.cpu for run in parse_runs)
    parse_median = statistics.median(run.cpu for run in parse_runs)
    print(f"subprocesses, {rows:,} rows ({size_mb:.0f} MB), {repeat} alternating runs each:")
    for name, runs in (("parse-only script", parse_runs), ("vmt convert", vmt_runs)):
        best = min(runs, key=lambda run: run.cpu)
        median = statistics.median(run.cpu for run in runs)
        print(
            f"  {name:18s} best: CPU {best.cpu:5.2f} s (user {best.user:.2f} + system "
            f"{best.system:.2f}), wall {best.wall:5.1f} s, {rows / best.cpu:>9,.0f} rows per CPU s"
            f"   {parse_best / best.cpu:.2f}x;   median: CPU {median:5.2f} s   "
            f"{parse_median / median:.2f}x"
        )
    for k, (parse, vmt) in enumerate(zip(parse_runs, vmt_runs, strict=True)):
        print(
            f"  run {k + 1}: parse-only {parse.cpu:.2f} s, vmt convert {vmt.cpu:.2f} s "
            f"(user {vmt.user:.2f} + system {vmt.system:.2f})   {parse.cpu / vmt.cpu:.2f}x"
        )
    export.unlink()


def peak_rss(work: Path, sizes: list[int]) -> None:
    print("peak RSS (getrusage of the child):")
    script = work / "parse_only.py"
    script.write_text(_PARSE_ONLY_SCRIPT)
    for rows in sizes:
        export = generate_export(work / f"export-rss-{rows}.ndjson", rows)
        size_gb = export.stat().st_size / 1e9
        parse_peak = run_child([sys.executable, str(script), str(export)]).peak_mib
        run = run_child(_vmt_convert(export, work))
        print(
            f"  {rows:>9,} rows ({size_gb:.1f} GB): vmt convert {run.peak_mib} MiB, parse-only "
            f"script {parse_peak} MiB   (vmt convert: wall {run.wall:.0f} s, CPU {run.cpu:.0f} s)"
        )
        export.unlink()


def _vmt_convert(export: Path, work: Path) -> list[str]:
    """The command; the previous output is deleted first, so every run writes a new file."""
    (work / "out.jsonl").unlink(missing_ok=True)
    return [sys.executable, "-m", "vmt", "convert", str(export), "-o", str(work / "out.jsonl")]


if __name__ == "__main__":
    main()
