"""``vmt serve`` as a user runs it: refusals name what is missing; logs carry no secrets."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import VMT, cli_env
from vmt.service.signature import sign

SECRET = "whsec-cli-0123456789"
LB_KEY = "lb-key-must-never-be-logged"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(proc: subprocess.Popen[str] | subprocess.Popen[bytes], url: str) -> None:
    """Return once ``proc`` (a ``vmt serve``) answers ``/healthz``; fail if it exits first."""
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "vmt serve did not come up"
        time.sleep(0.1)


def run_until_healthy(args: list[str], env: dict[str, str]) -> tuple[str, str]:
    """Start ``vmt serve``, wait for /healthz, call /models, stop it; (models status, stderr)."""
    port = free_port()
    proc = subprocess.Popen(
        [*VMT, "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url)
        signed = {"X-Hub-Signature": sign(SECRET.encode(), b"")}
        models = httpx.get(f"{url}/models", headers=signed).text
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    return models, stderr


def test_refuses_to_start_without_secrets_naming_them(tmp_path: Path) -> None:
    out = subprocess.run([*VMT, "serve"], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert out.returncode == 1
    assert "VMT_WEBHOOK_SECRET" in out.stderr
    assert "LABELBOX_API_KEY" in out.stderr
    assert "--insecure" in out.stderr
    assert "Traceback" not in out.stderr


def test_serves_with_json_logs_and_no_secret_in_them(tmp_path: Path) -> None:
    env = cli_env(
        VMT_WEBHOOK_SECRET=SECRET,
        LABELBOX_API_KEY=LB_KEY,
        VMT_LOG_JSON="1",
        VMT_STATE_DIR=str(tmp_path / "state"),
        VMT_API_TOKEN="tok-cli-secret",
    )
    models, stderr = run_until_healthy([], env)
    assert "local_object_detection" in json.loads(models)
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    messages = " ".join(entry["message"] for entry in lines)
    assert "offering model types" in messages
    for secret in (SECRET, LB_KEY, "tok-cli-secret"):
        assert secret not in stderr


def test_insecure_mode_starts_and_warns_loudly(tmp_path: Path) -> None:
    env = cli_env(LABELBOX_API_KEY=LB_KEY, VMT_STATE_DIR=str(tmp_path / "state"))
    models, stderr = run_until_healthy(["--insecure"], env)
    assert "local_object_detection" in json.loads(models)  # unsigned is accepted
    assert "INSECURE" in stderr
    assert "VMT_API_TOKEN is not set" in stderr
