"""The dashboard's runs page with 10,000 runs in the store, and the rows pages of a run with
200,000 evaluated rows, against ``/healthz`` in the same run.

A run store is filled with ``--runs`` runs (complete with metrics, failed with an error,
running with progress; each with its six stage rows), then the real ``vmt ui`` app is served by
uvicorn in a child process on 127.0.0.1 and this process, logged in, asks for pages one request
at a time: ``/healthz`` (baseline: the cheapest route), the first runs page, a deep page
(``?page=150``), a state filter (``?state=failed``) and one run's page. Each answer's latency is
measured end to end (HTTP on loopback, template rendering, the store queries).

One of the complete runs gets ``--rows`` evaluated rows (samples.jsonl, predictions.jsonl and a
metrics.json in its folder, no images): its rows pages are measured too (first page of rows with
errors, a deep page, one error kind, one class, one row). The first request builds the run's row
table (timed apart, as "row table build"); the figures are of the requests after it.

    .venv/bin/python bench/dashboard.py                  # 10,000 runs, 200,000 rows
    .venv/bin/python bench/dashboard.py --runs 1000 --rows 20000 --requests 50
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

SRC = Path(__file__).resolve().parents[1] / "src"
TOKEN = "bench-dashboard-token"
TARGET_MS = 200.0


def fill_store(state_dir: Path, runs: int) -> str:
    """``runs`` runs written in one transaction; returns the id of a complete one."""
    sys.path.insert(0, str(SRC))
    from vmt.pipeline.protocols import Stage
    from vmt.pipeline.run_config import files_run_config
    from vmt.pipeline.store import RunStore

    store = RunStore(state_dir / "runs.sqlite")
    template = store.create_run(files_run_config(export="/data/export.ndjson", out_dir="/out"))
    config = store.get_run(template).config.to_json()
    store.close()
    conn = sqlite3.connect(state_dir / "runs.sqlite")
    now = time.time() - runs * 60
    run_rows, stage_rows = [], []
    for i in range(runs):
        run_id = f"bench-{i:06d}"
        kind = i % 10
        state = "failed" if kind == 0 else "running" if kind == 1 else "complete"
        metrics = {"all": {"mAP": 0.4 + i % 7 / 100, "AP50": 0.7 + i % 5 / 100, "images": 500}}
        run_rows.append(
            (
                run_id,
                now + i * 60,
                now + i * 60 + 900,
                state,
                "prepare" if state == "failed" else "train" if state == "running" else "publish",
                config,
                orjson.dumps(metrics if state == "complete" else {}).decode(),
                f"image folder missing on row {i}" if state == "failed" else None,
            )
        )
        for n, stage in enumerate(Stage):
            outputs: dict[str, object] = {}
            if stage is Stage.PREPARE:
                outputs = {"rows": 520, "samples": 500, "rejected": 20}
            elif stage is Stage.TRAIN:
                outputs = {"model": "/out/model.pt"}
            stage_rows.append(
                (run_id, stage.value, "done", now + i * 60 + n, now + i * 60 + n + 1,
                 1, orjson.dumps(outputs).decode(), 40 if state == "running" else None, 100)
            )  # fmt: skip
    with conn:
        conn.executemany(
            "INSERT INTO runs (id, created, updated, state, stage, config, metrics, error)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            run_rows,
        )
        conn.executemany(
            "INSERT INTO stages (run_id, stage, state, started, finished, attempts, outputs,"
            " progress_done, progress_total) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            stage_rows,
        )
    conn.close()
    return "bench-000005"


def fill_rows(run_dir: Path, rows: int) -> None:
    """``rows`` evaluated rows of 0-5 boxes (4 classes) in ``run_dir``, predictions jittered,
    dropped, swapped or invented, as the evaluate stage's inputs."""
    sys.path.insert(0, str(SRC))
    import numpy as np

    from vmt.domain import Box, Detection, Prediction, Sample, Split
    from vmt.pipeline import artifacts

    rng = np.random.default_rng(0)
    classes = ("car", "person", "sign", "bike")
    run_dir.mkdir(parents=True, exist_ok=True)
    with (
        artifacts.sample_writer(run_dir / artifacts.SAMPLES_FILE) as samples,
        artifacts.prediction_writer(run_dir / artifacts.PREDICTIONS_FILE) as predictions,
    ):
        for i in range(rows):
            n = int(rng.integers(0, 6))
            xy = rng.uniform(0, 560, (n, 2))
            wh = rng.uniform(10, 80, (n, 2))
            labels = rng.integers(0, 4, n)
            boxes = tuple(
                Box(classes[labels[j]], float(xy[j, 0]), float(xy[j, 1]),
                    float(xy[j, 0] + wh[j, 0]), float(xy[j, 1] + wh[j, 1]))
                for j in range(n)
            )  # fmt: skip
            found = []
            for box in boxes:
                roll = float(rng.random())
                if roll < 0.2:
                    continue
                label = classes[int(rng.integers(0, 4))] if roll > 0.9 else box.label
                dx, dy = (float(v) for v in rng.normal(0, 4, 2))
                moved = Box(label, box.x0 + dx, box.y0 + dy, box.x1 + dx, box.y1 + dy)
                found.append(Detection(moved, float(rng.uniform(0.3, 1.0))))
            if rng.random() < 0.3:
                found.append(Detection(Box("car", 10.0, 10.0, 60.0, 50.0), float(rng.random())))
            samples.write(Sample(f"row-{i:07d}", f"/data/{i}.jpg", 640, 640, Split.TEST, boxes))
            predictions.write(Prediction(f"row-{i:07d}", tuple(found)))
    (run_dir / artifacts.METRICS_FILE).write_bytes(orjson.dumps({"confidence_threshold": 0.5}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVER = """
import sys, uvicorn
from vmt.config import load_settings
from vmt.service.dashboard.local_app import create_ui_app
app = create_ui_app(load_settings())
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def measure(client: httpx.Client, path: str, requests: int) -> list[float]:
    for _ in range(5):  # warm up (connection, template compile, SQLite page cache)
        assert client.get(path).status_code == 200, path
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp) / "state"
        started = time.perf_counter()
        run_id = fill_store(state_dir, args.runs)
        print(f"store: {args.runs} runs written in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        fill_rows(state_dir / "runs" / run_id, args.rows)
        print(f"run {run_id}: {args.rows} rows written in {time.perf_counter() - started:.1f} s")
        port = free_port()
        env = dict(os.environ, PYTHONPATH=str(SRC), VMT_STATE_DIR=str(state_dir),
                   VMT_API_TOKEN=TOKEN)  # fmt: skip
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=30) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        client.get("/healthz")
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline or server.poll() is not None:
                            raise
                        time.sleep(0.1)
                login = client.post("/ui/login", data={"token": TOKEN, "next": "/ui/"})
                assert login.status_code == 303, login.text
                rows = f"/ui/runs/{run_id}/rows"
                started = time.perf_counter()
                built = client.get(rows, timeout=1800)
                assert built.status_code == 200, built.text
                print(
                    f"row table build (first rows request): {time.perf_counter() - started:.1f} s"
                )
                pages = {
                    "/healthz (baseline)": "/healthz",
                    "runs, first page": "/ui/",
                    "runs, page 150": "/ui/?page=150",
                    "runs, state=failed": "/ui/?state=failed&page=3",
                    "one run": f"/ui/runs/{run_id}",
                    "rows, first page": rows,
                    "rows, page 1000": f"{rows}?kind=all&page=1000",
                    "rows, missed": f"{rows}?kind=missed&page=20",
                    "rows, class sign": f"{rows}?kind=errors&class=sign&page=5",
                    "one row": f"/ui/runs/{run_id}/row?data_row=row-{args.rows // 2:07d}",
                }
                results = {
                    name: measure(client, path, args.requests) for name, path in pages.items()
                }
        finally:
            server.terminate()
            server.wait(10)
    baseline = statistics.median(results["/healthz (baseline)"])
    print(f"{'page':<22} {'median ms':>10} {'p95 ms':>8} {'x healthz':>10}")
    for name, times in results.items():
        median = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1]
        print(f"{name:<22} {median:>10.2f} {p95:>8.2f} {median / baseline:>10.1f}")
    worst = max(
        statistics.quantiles(t, n=20)[-1] for n, t in results.items() if n.startswith("runs")
    )
    verdict = "under" if worst < TARGET_MS else "OVER"
    print(f"runs pages: worst p95 {worst:.1f} ms, {verdict} the {TARGET_MS:.0f} ms target "
          f"with {args.runs} runs in the store")  # fmt: skip
    slowest = max(statistics.median(t) for n, t in results.items() if n.startswith("rows"))
    verdict = "under" if slowest < TARGET_MS else "OVER"
    print(f"rows pages: worst median {slowest:.1f} ms, {verdict} the {TARGET_MS:.0f} ms target "
          f"with {args.rows} evaluated rows")  # fmt: skip


if __name__ == "__main__":
    main()
