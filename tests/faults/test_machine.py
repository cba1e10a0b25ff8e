"""Part 4 of the fault campaign: the machine. The state directory on a small tmpfs that fills up
mid-run, and one remounted read-only: the run fails with a message that says so, the SQLite run
store passes ``PRAGMA integrity_check``, and ``vmt resume`` completes once space is back.

Mounting needs root (the campaign runs as root in CI's container; ``make test-faults``)."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.faults import figures
from tests.faults.test_flaky_backends import MODEL_RUN
from tests.faults.test_kills import _check_once, world


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _run_ids(state: Path) -> list[str]:
    db = sqlite3.connect(f"file:{state / 'runs.sqlite'}?mode=ro", uri=True)
    try:
        return [str(row[0]) for row in db.execute("SELECT id FROM runs")]
    finally:
        db.close()


def _integrity(state: Path) -> str:
    db = sqlite3.connect(f"file:{state / 'runs.sqlite'}?mode=ro", uri=True)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


@pytest.mark.faults
@pytest.mark.parametrize("trouble", ["full", "read-only"])
def test_a_full_or_read_only_state_dir_fails_clearly_and_resumes(
    tmp_path: Path, trouble: str
) -> None:
    start = time.monotonic()
    with tmpfs(tmp_path / "mnt", "64m") as mnt, world(tmp_path, state=mnt / "state") as w:
        filler = mnt / "filler"
        done: list[bool] = []

        def trouble_at(method: str, path: str) -> None:
            """Once the run reports PREPARING_DATA: fill the disk, or make it read-only."""
            w.count(method, path)
            statuses = [s["status"] for s in w.labelbox.statuses(MODEL_RUN)]
            if done or "PREPARING_DATA" not in statuses:
                return
            done.append(True)
            if trouble == "full":
                free = int(subprocess.run(
                    ["df", "--output=avail", "-k", str(mnt)], capture_output=True, text=True
                ).stdout.split()[-1])  # fmt: skip
                subprocess.run(["fallocate", "-l", f"{free}k", str(filler)], check=True)
            else:
                subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)

        if trouble == "full":
            for proxy in w.proxies:
                proxy.on_request = trouble_at
            first = w.run("run", "--model-run", MODEL_RUN, "--trainer", "vertex")
        else:  # a run killed mid-way, its state dir then remounted read-only (no writer left)
            w.kill_at = 60
            w.run("run", "--model-run", MODEL_RUN, "--trainer", "vertex")
            w.kill_at = None
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
            first = w.run("resume", _run_ids(w.state)[0])
        message = " ".join(first.stderr.split())
        assert first.returncode == 1, first.stderr[-3000:]
        wanted = "no space left" if trouble == "full" else "read-only"
        assert wanted in message.lower(), message[-1500:]
        assert "Traceback" not in first.stderr
        if trouble == "full":
            assert _integrity(w.state) == "ok"
            filler.unlink()
        else:
            subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
            assert _integrity(w.state) == "ok"
        [run_id] = _run_ids(w.state)
        again = w.run("resume", run_id)
        assert again.returncode == 0, again.stderr[-3000:]
        _check_once(w)
        figures.record(
            f"4 state dir {trouble}",
            failed_with=message[message.lower().find("error:") :][:200],
            integrity_check="ok",
            resumed=True,
            seconds=time.monotonic() - start,
        )
