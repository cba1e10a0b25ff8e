"""Shared test setup. No test can reach a real account: credentials are stripped from the env."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.labelbox_server import FakeLabelbox

SRC = Path(__file__).resolve().parents[1] / "src"

# Before any test imports torch: OpenMP threads that sleep instead of spinning while waiting.
# On a busy machine spinning threads make every torch op many times slower (see
# vmt.backends.local.trainer.passive_openmp_threads); subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_SECRET_VARS = (
    "LABELBOX_API_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "STORAGE_EMULATOR_HOST",
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in _SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("VMT_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VMT_CONFIG", str(tmp_path / "absent-vmt.toml"))
    monkeypatch.setenv("VMT_STATE_DIR", str(tmp_path / "state"))
    # The fakes serve images on loopback over http: the outbound policy lets tests reach them
    # (tests of the policy set their own rules).
    monkeypatch.setenv("VMT_OUTBOUND_ALLOW", "127.0.0.1")
    monkeypatch.setenv("VMT_OUTBOUND_ALLOW_HTTP", "true")
    # One staging process (no worker processes to start) unless a test asks for more.
    monkeypatch.setenv("VMT_STAGING_PROCESSES", "1")
    yield


@pytest.fixture
def fake_labelbox(tmp_path: Path) -> Iterator[FakeLabelbox]:
    """The fake Labelbox API on a free loopback port, stopped after the test."""
    fake = FakeLabelbox(tmp_path / "fake-labelbox").start()
    try:
        yield fake
    finally:
        fake.stop()


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for running ``python -m vmt`` in a subprocess against this checkout's src."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


VMT = [sys.executable, "-m", "vmt"]


def sigkill_when(
    proc: subprocess.Popen[Any], ready: Callable[[], bool], *, what: str, timeout_s: float = 180
) -> None:
    """Kill ``proc`` with SIGKILL as soon as ``ready()`` holds (polled every 50 ms). Fails the
    test with its output (stderr, else stdout, when piped) if it ends first, or after
    ``timeout_s`` saying ``what`` never happened; ``proc`` is reaped whatever happens."""
    try:
        deadline = time.monotonic() + timeout_s
        output = proc.stderr or proc.stdout
        while not ready():
            assert proc.poll() is None, output.read() if output else ""
            assert time.monotonic() < deadline, f"{what} never happened"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    assert proc.returncode == -signal.SIGKILL
