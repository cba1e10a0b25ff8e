"""Webhook latency at a fixed request rate on loopback, against a baseline in the same run.

The service (real app: signature check, capped body read, SQLite delivery store, worker) runs
under uvicorn in a child process with a no-op run service, so only the HTTP layer is measured.
This process sends requests open-loop at ``--rate`` per second for ``--seconds``: each request
is due at a fixed time whether or not earlier ones have answered, and its latency is counted
from that due time (queueing on our side counts against the service, no coordinated omission).

Phases, same server, same connection pool: ``GET /healthz`` (baseline: the cheapest route),
then signed ``POST /model_run`` deliveries (every other one repeats the previous modelRunId, as
Labelbox redeliveries do, sometimes overlapping: exactly one of each pair may answer 202 and
create a run, the other 200; anything else counts as an error).

    .venv/bin/python bench/webhook.py                      # 200 req/s for 30 s per phase
    .venv/bin/python bench/webhook.py --rate 50 --seconds 5
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


def serve(port: int, state_dir: str) -> None:
    """Child process: the real app over NoopRuns, plain uvicorn, quiet logs."""
    import uvicorn

    from vmt.config import load_settings
    from vmt.service.app import create_app

    settings = load_settings(webhook_secret=SECRET, state_dir=Path(state_dir))
    app = create_app(settings, runner=NoopRuns(), model_types=["local_object_detection"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def phase(url: str, *, rate: float, seconds: float, make: Any, client: Any) -> dict[str, Any]:
    total = int(rate * seconds)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    statuses: dict[int, int] = {}
    start = time.perf_counter() + 0.2

    async def one(index: int) -> None:
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        method, path, body, headers, expected = make(index)
        try:
            response = await client.request(method, url + path, content=body, headers=headers)
            status = response.status_code
        except Exception as exc:  # noqa: BLE001 - every failure is counted, by kind
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        latencies.append((time.perf_counter() - due) * 1000)
        statuses[index] = status
        if status not in expected:
            errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1

    await asyncio.gather(*(one(i) for i in range(total)))
    elapsed = time.perf_counter() - start
    return {
        "requests": total,
        "achieved_rate": round(total / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "statuses": statuses,
    }


async def run_bench(url: str, rate: float, seconds: float) -> dict[str, Any]:
    import httpx

    sys.path.insert(0, str(SRC))
    from vmt.service.signature import sign

    secret = SECRET.encode()
    prefix = f"bench-{int(time.time())}"

    def healthz(index: int) -> tuple[str, str, bytes, dict[str, str], tuple[int, ...]]:
        return "GET", "/healthz", b"", {}, (200,)

    def delivery(index: int) -> tuple[str, str, bytes, dict[str, str], tuple[int, ...]]:
        body = json.dumps(
            {
                "modelId": "bench-model",
                "modelRunId": f"{prefix}-{index // 2}",
                "modelType": "local_object_detection",
            }
        ).encode()
        headers = {
            "X-Hub-Signature": sign(secret, body),
            "Content-Type": "application/json",
            "X-Labelbox-Id": f"delivery-{index}",
        }
        return "POST", "/model_run", body, headers, (200, 202)

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        for _ in range(20):  # warm-up: connections, imports, SQLite pages
            await client.get(url + "/healthz")
        baseline = await phase(url, rate=rate, seconds=seconds, make=healthz, client=client)
        webhook = await phase(url, rate=rate, seconds=seconds, make=delivery, client=client)
    # Each modelRunId was delivered twice, possibly overlapping: exactly one 202 per pair.
    codes = webhook.pop("statuses")
    baseline.pop("statuses")
    pairs = webhook["requests"] // 2
    wrong = sum(
        1 for pair in range(pairs) if [codes.get(2 * pair), codes.get(2 * pair + 1)].count(202) != 1
    )
    webhook["runs_created"] = sum(1 for code in codes.values() if code == 202)
    webhook["model_runs"] = pairs
    if wrong:
        webhook["errors"] += wrong
        webhook["error_kinds"]["not exactly one run per modelRunId"] = wrong
    return {"baseline_healthz": baseline, "webhook_model_run": webhook}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each phase")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.state_dir)
        return

    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    with tempfile.TemporaryDirectory() as state_dir:
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), "--state-dir", state_dir], env=env
        )
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
            results = asyncio.run(run_bench(url, args.rate, args.seconds))
        finally:
            server.terminate()
            server.wait(15)
    base, hook = results["baseline_healthz"], results["webhook_model_run"]
    print(json.dumps(results, indent=2))
    print(
        f"\nwebhook at {args.rate:g} req/s for {args.seconds:g} s: p50 {hook['p50_ms']} ms, "
        f"p99 {hook['p99_ms']} ms, errors {hook['errors']}  |  baseline GET /healthz: "
        f"p50 {base['p50_ms']} ms, p99 {base['p99_ms']} ms  |  ratio p99 webhook/baseline "
        f"{hook['p99_ms'] / base['p99_ms']:.2f}x, p50 {hook['p50_ms'] / base['p50_ms']:.2f}x"
    )


if __name__ == "__main__":
    main()
