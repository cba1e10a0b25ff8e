"""A synthetic 1M-row Labelbox model run through every stage, measured stage by stage.

    .venv/bin/python bench/million_rows.py [--rows 1000000] [--staging-images 500] [--work DIR]
    make bench-million        # --rows 100000, then --rows 1000000

The fake Labelbox (``tests/fakes/labelbox_server.py``, its own process) serves the model run's
export stream; the real labelbox SDK reads it (export) and uploads the predictions and per-row
metrics back (publish, chunked imports named per chunk). Each stage runs in a child process of
its own (``bench/million_stages.py``: the rows, the bench trainer and the stages), so its peak
RSS is its own, and reports wall time, CPU time, peak RSS and its row counts: rows in =
written + rejected at every stage, or the line says LOST. Anchors, in the same run:

- export: orjson parsing the exported file's lines (parse-only);
- evaluate: faster-coco-eval on the same rows and predictions as COCO files;
- staging: ``bench/staging.py`` on ``--staging-images`` images (the original approach beside
  vmt's stager). Images are not staged in the 1M-row run itself: a terabyte of images is not
  made here; the prepare stage writes the AutoML import file with each ``gs://`` image used in
  place.

The run's events and progress go to a real run store (SQLite, ``<work>/state``); the dashboard
row reads the run page and pages of its rejected rows (first, last, last of one reason).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STAGES = Path(__file__).with_name("million_stages.py")
ORDER = (
    ("export", "parse"),
    ("prepare", None),
    ("predict", None),
    ("evaluate", "faster-coco-eval"),
    ("publish", None),
    ("dashboard", None),
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _child(stage: str, work: Path, rows: int, endpoint: str) -> dict[str, Any]:
    command = [
        sys.executable,
        str(STAGES),
        stage,
        "--work",
        str(work),
        "--rows",
        str(rows),
        "--endpoint",
        endpoint,
    ]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"stage {stage} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _line(name: str, r: dict[str, Any]) -> str:
    kept = r["in"] == r["written"] + r["rejected"]
    return (
        f"{name:<22}{r['in']:>10}{r['written']:>10}{r['rejected']:>9}  "
        f"{'ok' if kept else 'LOST':<5}"
        f"{r['wall_s']:>9.1f}{r['cpu_s']:>8.1f}{r['peak_rss_mb']:>9.0f}{r['base_rss_mb']:>8.0f}"
    )


def _staging(images: int) -> str:
    if images <= 0:
        return "staging: not run (--staging-images 0)"
    command = [sys.executable, str(ROOT / "bench" / "staging.py"), "--images", str(images)]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"staging: bench/staging.py failed:\n{done.stderr[-2000:]}"
    return done.stdout.strip()


def run(rows: int, work: Path, staging_images: int) -> list[tuple[str, dict[str, Any]]]:
    """Every stage (and its anchor) on a ``rows``-row model run in ``work``; prints the table."""
    server = subprocess.Popen(
        [sys.executable, str(STAGES), "serve", "--work", str(work), "--rows", str(rows)],
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    results: list[tuple[str, dict[str, Any]]] = []
    try:
        started = json.loads(server.stdout.readline())
        for stage, anchor in ORDER:
            results.append((stage, _child(stage, work, rows, started["endpoint"])))
            if stage == "evaluate":
                _child("coco-files", work, rows, started["endpoint"])
            if anchor is not None:
                results.append(
                    (f"  anchor: {anchor}", _child(anchor, work, rows, started["endpoint"]))
                )
        server.stdin.write("stats\n")
        server.stdin.flush()
        fake = json.loads(server.stdout.readline())
    finally:
        server.stdin.close()
        server.wait(timeout=60)
    load = os.getloadavg()
    print(
        f"\n{rows:,} rows; fake Labelbox wrote the export in {started['generate_s']:.0f} s; "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"{'stage':<22}{'in':>10}{'written':>10}{'rejected':>9}  {'kept':<5}"
        f"{'wall s':>9}{'CPU s':>8}{'peak MB':>9}{'base MB':>8}"
    )
    for name, r in results:
        print(_line(name, r))
    by_name = dict(results)
    dash, pub = by_name["dashboard"], by_name["publish"]
    print(
        f"dashboard: run page {dash['run_page_ms']} ms ({dash['events']} events in the store), "
        f"{dash['in']:,} rejected rows in {dash['pages']:,} pages: page 1 "
        f"{dash['rejected_page_1_ms']} ms, last page {dash['rejected_last_page_ms']} ms, "
        f"last page of one reason {dash['rejected_last_page_of_a_reason_ms']} ms"
    )
    evaluate = by_name["evaluate"]
    print(
        f"per-row metrics: {evaluate['row_metric_lines']:,} metric rows for "
        f"{evaluate['written']:,} rows"
    )
    duplicates = fake["imports"] - fake["names"]
    print(
        f"publish: {pub['imports']} imports; Labelbox holds {fake['imports']} imports "
        f"({duplicates} duplicate names), {fake['accepted']:,} rows accepted, {fake['failed']} "
        f"failed; fake Labelbox peak RSS {fake['peak_rss_mb']:.0f} MB"
    )
    ratio = by_name["  anchor: faster-coco-eval"]["wall_s"] / evaluate["wall_s"]
    print(
        f"evaluate vs faster-coco-eval: {ratio:.2f}x; export vs orjson parse-only: "
        f"{by_name['export']['wall_s'] / by_name['  anchor: parse']['wall_s']:.1f}x the parse time"
    )
    print(_staging(staging_images))
    lost = [name for name, r in results if r["in"] != r["written"] + r["rejected"]]
    if lost or duplicates or fake["accepted"] != pub["written"]:
        raise SystemExit(f"rows lost or duplicated: {lost or 'publish'}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--staging-images", type=int, default=500)
    parser.add_argument("--work", type=Path, help="kept afterwards (default: a temporary folder)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="vmt-million-"))
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"{work} is not empty")
    start = time.perf_counter()
    try:
        run(args.rows, work, args.staging_images)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
