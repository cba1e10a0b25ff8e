"""``vmt serve`` as a process: oversized bodies, unauthenticated, on the routes that used to
read and parse them whole (login form, pool routes, webhook), leave its peak memory (VmHWM)
where it was and ``/healthz`` answering at once."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import VMT, cli_env
from tests.integration.service.test_serve_cli import free_port, wait_healthy

BODY = 4 * 1024 * 1024
ROUTES = ["/ui/login", "/runs/run-1/select", "/runs/run-1/prelabel", "/model_run"]


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


FORM = b"&".join(b"k%d=v" % i for i in range(BODY // 9))[:BODY]
"""Many small fields: what makes a form parser allocate (a dict entry and list per field)."""
JSON = b"[" + b"{}," * (BODY // 3 - 1) + b"{}]"
"""Many small objects: what makes a JSON parser allocate."""


def _send(port: int, path: str, *, declared: bool) -> int:
    """POST a 4 MiB body (declared, or chunked without a length) with a well-formed but wrong
    signature and token; the status line of the answer."""
    form = path.startswith("/ui/")
    body = FORM if form else JSON
    framing = f"Content-Length: {len(body)}" if declared else "Transfer-Encoding: chunked"
    kind = "application/x-www-form-urlencoded" if form else "application/json"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{framing}\r\n"
        f"Content-Type: {kind}\r\n"
        f"X-Hub-Signature: sha1={'0' * 40}\r\nAuthorization: Bearer wrong\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head.encode())
        try:
            for start in range(0, len(body), 64 * 1024):
                piece = body[start : start + 64 * 1024]
                sock.sendall(piece if declared else b"%x\r\n%s\r\n" % (len(piece), piece))
            if not declared:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed early: what the guard does
        answer = sock.recv(4096)
    return int(answer.split(b" ", 2)[1]) if answer else 0


def test_oversized_bodies_leave_memory_unchanged(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(
        VMT_WEBHOOK_SECRET="whsec-memory-0123456789",
        LABELBOX_API_KEY="lb-key-memory",
        VMT_API_TOKEN="token-memory-0123",
        VMT_STATE_DIR=str(tmp_path / "state"),
        VMT_POOL_DIR=str(tmp_path),
    )
    proc = subprocess.Popen(
        [*VMT, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url)
        for path in ROUTES:  # warm every route's code path with a small body first
            httpx.post(url + path, content=b"token=x")
        before = _peak_rss_kib(proc.pid)
        statuses = {
            (path, declared): _send(port, path, declared=declared)
            for path in ROUTES
            for declared in (True, False)
            for _ in range(2)
        }
        started = time.monotonic()
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        health_s = time.monotonic() - started
        grown_mib = (_peak_rss_kib(proc.pid) - before) / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert grown_mib < 8, f"peak RSS grew {grown_mib:.1f} MiB for 16 x 4 MiB bodies"
    assert health_s < 1.0
    assert all(status in (401, 413) for status in statuses.values()), statuses
    assert statuses[("/ui/login", True)] == statuses[("/ui/login", False)] == 413
