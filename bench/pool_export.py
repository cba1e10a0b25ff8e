"""Exporting a Labelbox project pool vs exporting a model run of the same rows, in one run.

The fake Labelbox (tests/fakes) runs in a child process, so only the client's work is measured:
the real labelbox SDK polls the task and streams the result in 1 MB chunks over loopback.

- baseline: ``LabelboxSource.export`` of a model run of N rows (stream to a file, no sort);
- pool:     ``export_pool`` of ``labelbox-project:P`` (the same N rows in the project, 10%
            labelled): stream, filter, cut each row, hold them in a throw-away SQLite table,
            write them sorted by data row id.

For each: wall time, rows a second, and the peak of Python memory (tracemalloc) during the
export, which stays flat in N when nothing holds the rows. The pool is exported twice and the
bench checks that the unchanged pool gives the same bytes (so its kept predictions are reused).

    .venv/bin/python bench/pool_export.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

MODEL_RUN = "mr-bench"
PROJECT = "proj-bench"


def _serve(folder: str, rows: int, conn: Connection) -> None:
    """Child process: the fake Labelbox with a dataset, a project and a model run of ``rows``."""
    from tests.fakes.labelbox_server import FakeLabelbox, make_export_row

    fake = FakeLabelbox(Path(folder) / "fake").start()
    ids = [f"dr-{i:06d}" for i in range(rows)]
    fake.catalog.add_dataset(
        "ds-bench",
        (
            {"id": r, "global_key": f"img-{i:06d}.png", "width": 640, "height": 480,
             "mime_type": "image/png", "row_data": f"https://images.example.invalid/{i}.png"}
            for i, r in enumerate(ids)
        ),
    )  # fmt: skip
    fake.projects.add_project(PROJECT, classes=["car"], data_rows=ids, labelled=set(ids[::10]))
    fake.add_model_run(
        MODEL_RUN,
        rows=(make_export_row(i, model_run_id=MODEL_RUN) for i in range(rows)),
        classes=["car"],
    )
    conn.send((fake.endpoint, fake.api_key))
    conn.recv()  # until the parent is done
    fake.stop()


def _measure(fn: Callable[[], Any]) -> tuple[float, int, Any]:
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return wall, peak, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    from vmt.backends.labelbox import LabelboxSource
    from vmt.backends.labelbox.pool_export import export_pool
    from vmt.backends.labelbox.project import LabelboxWorkspace
    from vmt.config import load_settings
    from vmt.pipeline.context import DetachedRunContext
    from vmt.pool.pool_spec import PoolSpec

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        parent, child = multiprocessing.Pipe()
        server = multiprocessing.get_context("fork").Process(
            target=_serve, args=(tmp, args.rows, child), daemon=True
        )
        server.start()
        endpoint, key = parent.recv()
        settings = load_settings(
            state_dir=folder / "state",
            labelbox_api_key=key,
            labelbox_endpoint=endpoint,
            labelbox_poll_seconds=0.05,
        )
        try:
            source = LabelboxSource(settings, MODEL_RUN)
            ctx = DetachedRunContext("bench", folder / "run", {})
            base_wall, base_peak, _ = _measure(
                lambda: source.export(ctx, folder / "model-run.ndjson")
            )

            def pool() -> Any:
                return export_pool(
                    PoolSpec.parse(f"labelbox-project:{PROJECT}"),
                    workspace=LabelboxWorkspace(settings),
                    folder=folder / "pools",
                    project_id=None,
                    watcher=DetachedRunContext("bench", folder / "pool", {}),
                )

            pool_wall, pool_peak, done = _measure(pool)
            first = done.path.read_bytes()
            again = pool()
            same = again.path.read_bytes() == first
        finally:
            parent.send("stop")
            server.join(timeout=30)

    mib = 1024 * 1024
    print(f"rows: {args.rows:,} ({done.rows:,} unlabelled in the pool, {done.labelled:,} left out)")
    print(f"baseline model-run export: {base_wall:6.2f} s  {args.rows / base_wall:9,.0f} rows/s  "
          f"peak Python memory {base_peak / mib:6.1f} MiB")  # fmt: skip
    print(f"pool export (sorted):      {pool_wall:6.2f} s  {args.rows / pool_wall:9,.0f} rows/s  "
          f"peak Python memory {pool_peak / mib:6.1f} MiB")  # fmt: skip
    print(f"ratio pool / baseline: time {pool_wall / base_wall:.2f}x, "
          f"memory {pool_peak / max(base_peak, 1):.2f}x")  # fmt: skip
    print(f"unchanged pool exported again gives the same bytes: {same}")


if __name__ == "__main__":
    main()
