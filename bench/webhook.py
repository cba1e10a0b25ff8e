"""Webhook latency at a fixed request rate on loopback, against a baseline in the same run.

The service (real app: signature check, capped body read, SQLite delivery store, worker) runs
under uvicorn in a child process. ``--runs store`` (the default): runs execute while the load
goes on: the real ``PipelineRunService`` creates each run in the real SQLite run store, and its
worker thread advances every accepted run through a ``StoreRunner`` that does, per run, what the
real ``Runner`` does to the store (take the run's lease, for each of the six stages: start,
``--stage-kib`` KiB of SHA-256 as the stage's CPU work, progress, an event, finish; then
COMPLETE and release the lease: 22 SQLite write transactions, synchronous=FULL) with no
external backend. ``--runs noop``: a run service that does nothing (HTTP layer only).
This process sends requests open-loop at ``--rate`` per second for ``--seconds``: each request
is due at a fixed time whether or not earlier ones have answered, and its latency is counted
from that due time (queueing on our side counts against the service, no coordinated omission).

Phases, same server, same connection pool: ``GET /healthz`` (baseline: the cheapest route),
then signed ``POST /model_run`` deliveries (every other one repeats the previous modelRunId, as
Labelbox redeliveries do, sometimes overlapping: exactly one of each pair may answer 202 and
create a run, the other 200; anything else counts as an error), then ``--storm`` signed
deliveries of ONE new modelRunId all at once, each on its own connection (asyncio.gather):
exactly one 202 and the rest 200, and exactly one run for it in the run store (counted there,
not through the API). Exits 1 on any error or on more than one run per model run.

    .venv/bin/python bench/webhook.py --seconds 60         # 200 req/s, 60 s per phase, storm 1000
    .venv/bin/python bench/webhook.py --rate 50 --seconds 5 --storm 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SECRET = "bench-webhook-secret"
SRC = Path(__file__).resolve().parents[1] / "src"


class NoopRuns:
    """A RunService that records runs and finishes them at once."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.count = 0

    def new_run_id(self) -> str:
        self.count += 1
        return f"bench-{os.getpid()}-{self.count}-{time.monotonic_ns()}"

    def start_run(
        self, run_id: str, *, model_run_id: str, model_type: str, model_id: str | None
    ) -> None:
        self.runs.setdefault(run_id, {"run_id": run_id, "state": "pending"})

    def run_state(self, run_id: str) -> str | None:
        run = self.runs.get(run_id)
        return str(run["state"]) if run is not None else None

    def get_run(self, run_id: str) -> Mapping[str, Any] | None:
        return self.runs.get(run_id)

    def list_runs(self, *, limit: int) -> Sequence[Mapping[str, Any]]:
        return list(self.runs.values())[:limit]

    def cancel(self, run_id: str) -> Mapping[str, Any]:
        return self.runs[run_id]

    def unfinished_runs(self) -> Sequence[str]:
        return []

    def advance(self, run_id: str) -> float | None:
        self.runs[run_id]["state"] = "complete"
        return None

    def check_ready(self) -> None:
        return None


class StoreRunner:
    """Stands in for ``vmt.pipeline.runner.Runner`` behind the real ``PipelineRunService``:
    advances a run through the real run store as the Runner does (lease, six stages started,
    progressed, logged and finished, run COMPLETE), each stage hashing ``stage_kib`` KiB."""

    def __init__(self, store: Any, stage_kib: int) -> None:
        self.store = store
        self.work = os.urandom(stage_kib * 1024)
        self.advanced = 0

    def advance(self, run_id: str) -> Any:
        import hashlib

        from vmt.pipeline.lease import LeaseHolder
        from vmt.pipeline.protocols import Stage
        from vmt.pipeline.run_records import RunState

        holder = LeaseHolder.for_this_process()
        if self.store.try_acquire_lease(run_id, holder, 30.0) is not None:
            from vmt.errors import RunConflictError

            raise RunConflictError(f"run {run_id} is being advanced", run_id=run_id)
        try:
            for stage in Stage:
                self.store.start_stage(run_id, stage)
                digest = hashlib.sha256(self.work).hexdigest()
                self.store.set_progress(run_id, stage, 1, 1)
                self.store.add_event(run_id, f"{stage.value} done", stage=stage)
                self.store.finish_stage(run_id, stage, {"sha256": digest})
            self.store.set_run_state(run_id, RunState.COMPLETE)
        finally:
            self.store.release_lease(run_id, holder)
        self.advanced += 1
        return self.store.get_run(run_id)

    def cancel(self, run_id: str) -> Any:
        raise NotImplementedError("not used by the bench")


def serve(port: int, state_dir: str, runs: str, stage_kib: int) -> None:
    """Child process: the real app over the chosen run service, plain uvicorn, quiet logs."""
    import uvicorn

    from vmt.config import load_settings
    from vmt.pipeline.store import RunStore
    from vmt.service.app import create_app
    from vmt.service.pipeline_runs import PipelineRunService

    settings = load_settings(webhook_secret=SECRET, state_dir=Path(state_dir))
    service: Any = NoopRuns()
    if runs == "store":
        runner = StoreRunner(RunStore.for_settings(settings), stage_kib)
        service = PipelineRunService(settings, runner=runner)  # type: ignore[arg-type]
    app = create_app(settings, runner=service, model_types=["local_object_detection"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


class RawHttpPool:
    """A minimal HTTP/1.1 keep-alive client over asyncio streams: prebuilt request bytes in,
    status code out. Much cheaper per request than a full client, so on a small machine the
    load generator takes as little CPU from the server as it can."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.idle: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0

    async def request(self, raw: bytes) -> int:
        # The server closes keep-alive connections idle for 5 s (uvicorn's default): drop
        # those older than 2 s, and resend once on a fresh connection if a reused one was
        # closed before any byte of the answer (the request was then not processed).
        while self.idle:
            used, reader, writer = self.idle.pop()
            if time.monotonic() - used < 2.0:
                status_line = await self._send(reader, writer, raw)
                if status_line:
                    return await self._finish(reader, writer, status_line)
            writer.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.opened += 1
        status_line = await self._send(reader, writer, raw)
        if not status_line:
            writer.close()
            raise ConnectionError("connection closed before the response")
        return await self._finish(reader, writer, status_line)

    @staticmethod
    async def _send(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
    ) -> bytes:
        try:
            writer.write(raw)
            return await reader.readline()
        except ConnectionResetError:
            return b""

    async def _finish(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status_line: bytes
    ) -> int:
        length = 0
        keep_alive = True
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep_alive = False
        await reader.readexactly(length)
        if keep_alive:
            self.idle.append((time.monotonic(), reader, writer))
        else:
            writer.close()
        return int(status_line.split()[1])

    def close(self) -> None:
        for _, _, writer in self.idle:
            writer.close()
        self.idle.clear()


def raw_request(method: str, path: str, port: int, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def phase(
    pool: RawHttpPool, requests: list[tuple[bytes, tuple[int, ...]]], *, rate: float
) -> dict[str, Any]:
    """Send ``requests`` open-loop at ``rate``; latency counted from each one's due time."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    statuses: dict[int, int] = {}
    tasks: list[asyncio.Task[None]] = []

    async def one(index: int, due: float, raw: bytes, expected: tuple[int, ...]) -> None:
        try:
            status = await pool.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        latencies.append((time.perf_counter() - due) * 1000)
        statuses[index] = status
        if status not in expected:
            errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1

    start = time.perf_counter() + 0.1
    for index, (raw, expected) in enumerate(requests):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, due, raw, expected)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return {
        "requests": len(requests),
        "achieved_rate": round(len(requests) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "statuses": statuses,
    }


def signed_delivery(port: int, model_run_id: str, delivery_id: str) -> bytes:
    from vmt.service.signature import sign

    body = json.dumps(
        {
            "modelId": "bench-model",
            "modelRunId": model_run_id,
            "modelType": "local_object_detection",
        }
    ).encode()
    headers = {
        "X-Hub-Signature": sign(SECRET.encode(), body),
        "Content-Type": "application/json",
        "X-Labelbox-Id": delivery_id,
    }
    return raw_request("POST", "/model_run", port, body, headers)


async def storm(port: int, count: int, model_run_id: str) -> dict[str, Any]:
    """``count`` deliveries of ``model_run_id`` at once, each on its own new connection."""
    raw = signed_delivery(port, model_run_id, f"storm-{model_run_id}")
    gate = asyncio.Event()

    async def one() -> int | str:
        pool = RawHttpPool("127.0.0.1", port)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await gate.wait()
            writer.write(raw)
            status_line = await reader.readline()
            if not status_line:
                writer.close()
                return "closed before the response"
            return await pool._finish(reader, writer, status_line)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            return type(exc).__name__
        finally:
            pool.close()

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    await asyncio.sleep(0.5)  # every connection open (or failed) before the first byte is sent
    start = time.perf_counter()
    gate.set()
    outcomes = await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    kinds: dict[str, int] = {}
    for outcome in outcomes:
        key = f"HTTP {outcome}" if isinstance(outcome, int) else str(outcome)
        kinds[key] = kinds.get(key, 0) + 1
    accepted, again = kinds.get("HTTP 202", 0), kinds.get("HTTP 200", 0)
    errors = count - again - min(accepted, 1)
    return {
        "deliveries": count,
        "answers": kinds,
        "errors": errors,
        "seconds": round(elapsed, 2),
    }


def store_counts(state_dir: str, model_run_id: str) -> dict[str, int]:
    """Runs counted in the run store itself: all, complete, and those of ``model_run_id``."""
    from vmt.pipeline.run_records import RunState
    from vmt.pipeline.store import RunStore

    store = RunStore(Path(state_dir) / "runs.sqlite")
    try:
        rows = store._conn().execute(
            "SELECT COUNT(*) FROM runs WHERE json_extract(config, '$.source.options.model_run_id')"
            " = ?",
            (model_run_id,),
        )
        return {
            "runs": store.count_runs(),
            "complete": store.count_runs(state=RunState.COMPLETE),
            "of_model_run": int(rows.fetchone()[0]),
        }
    finally:
        store.close()


async def run_bench(
    port: int, rate: float, seconds: float, storm_size: int, state_dir: str | None
) -> dict[str, Any]:
    sys.path.insert(0, str(SRC))
    prefix = f"bench-{int(time.time())}"
    total = int(rate * seconds)
    healthz = [(raw_request("GET", "/healthz", port, b"", {}), (200,)) for _ in range(total)]
    deliveries = [
        (signed_delivery(port, f"{prefix}-{index // 2}", f"delivery-{index}"), (200, 202))
        for index in range(total)
    ]

    pool = RawHttpPool("127.0.0.1", port)
    try:
        for raw, _ in healthz[:50]:  # warm-up: connections, imports, SQLite pages
            await pool.request(raw)
        baseline = await phase(pool, healthz, rate=rate)
        webhook = await phase(pool, deliveries, rate=rate)
    finally:
        pool.close()
    if state_dir is not None:
        webhook["store_at_end_of_load"] = store_counts(state_dir, f"{prefix}-0")
    # Each modelRunId was delivered twice, possibly overlapping: exactly one 202 per pair.
    codes = webhook.pop("statuses")
    baseline.pop("statuses")
    pairs = total // 2
    wrong = sum(
        1 for pair in range(pairs) if [codes.get(2 * pair), codes.get(2 * pair + 1)].count(202) != 1
    )
    webhook["runs_created"] = sum(1 for code in codes.values() if code == 202)
    webhook["model_runs"] = pairs
    if wrong:
        webhook["errors"] += wrong
        webhook["error_kinds"]["not exactly one run per modelRunId"] = wrong
    results = {"baseline_healthz": baseline, "webhook_model_run": webhook}
    if storm_size:
        storm_id = f"{prefix}-storm"
        redeliveries = await storm(port, storm_size, storm_id)
        if state_dir is not None:
            counts = store_counts(state_dir, storm_id)
            redeliveries["runs_in_store"] = counts["of_model_run"]
            if counts["of_model_run"] != 1:
                redeliveries["errors"] += 1
        results["redeliveries_of_one_model_run"] = redeliveries
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each phase")
    parser.add_argument(
        "--runs", choices=("store", "noop"), default="store", help="what the run service does"
    )
    parser.add_argument("--stage-kib", type=int, default=256, help="SHA-256 work per stage")
    parser.add_argument("--storm", type=int, default=1000, help="concurrent redeliveries of one")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    if args.serve:
        serve(args.serve, args.state_dir, args.runs, args.stage_kib)
        return

    import httpx

    started = time.perf_counter()
    load_before = os.getloadavg()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    with tempfile.TemporaryDirectory() as state_dir:
        command = [sys.executable, __file__, "--serve", str(port), "--state-dir", state_dir]
        command += ["--runs", args.runs, "--stage-kib", str(args.stage_kib)]
        server = subprocess.Popen(command, env=env)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.1)
            store_dir = state_dir if args.runs == "store" else None
            results = asyncio.run(run_bench(port, args.rate, args.seconds, args.storm, store_dir))
        finally:
            server.terminate()
            server.wait(15)
    results["load_average_1m"] = {"before": load_before[0], "after": os.getloadavg()[0]}
    results["wall_s"] = round(time.perf_counter() - started, 1)
    base, hook = results["baseline_healthz"], results["webhook_model_run"]
    storm_result = results.get("redeliveries_of_one_model_run", {})
    print(json.dumps(results, indent=2))
    print(
        f"\nwebhook at {args.rate:g} req/s for {args.seconds:g} s (runs: {args.runs}): "
        f"p50 {hook['p50_ms']} ms, p99 {hook['p99_ms']} ms, errors {hook['errors']}  |  "
        f"baseline GET /healthz: p50 {base['p50_ms']} ms, p99 {base['p99_ms']} ms  |  ratio p99 "
        f"webhook/baseline {hook['p99_ms'] / base['p99_ms']:.2f}x, "
        f"p50 {hook['p50_ms'] / base['p50_ms']:.2f}x"
    )
    if storm_result:
        print(
            f"{storm_result['deliveries']} concurrent redeliveries of one model run: "
            f"{storm_result['answers']}, runs in store {storm_result.get('runs_in_store', '-')}, "
            f"errors {storm_result['errors']}"
        )
    if hook["errors"] or storm_result.get("errors"):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
