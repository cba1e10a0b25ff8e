"""CPU time and memory of a benchmarked child and every process under it (Linux).

``become_subreaper`` makes orphans (a multiprocessing fork server outliving its parent) this
process's children, so ``reap_orphans`` collects them and the kernel's accounting of reaped
children (``getrusage(RUSAGE_CHILDREN)``) covers the whole tree. ``MemorySampler`` polls the
proportional set size (PSS: each shared page split between the processes sharing it, so forked
workers' shared interpreter pages are not counted twice) of every descendant (``/proc``) and
keeps the peak of their sum.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from pathlib import Path


def become_subreaper() -> None:
    """Orphaned descendants are re-parented to this process (prctl PR_SET_CHILD_SUBREAPER)."""
    pr_set_child_subreaper = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except FileNotFoundError:
            continue
    return found


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        try:
            below = children(todo.pop())
        except FileNotFoundError:
            continue
        todo.extend(below - found)
        found |= below
    return found


def reap_orphans(keep: set[int], timeout_s: float = 60.0) -> None:
    """Wait for every child of this process but ``keep`` to end (orphans adopted here)."""
    deadline = time.monotonic() + timeout_s
    while left := children(os.getpid()) - keep:
        if time.monotonic() > deadline:
            raise SystemExit(f"processes left running: {sorted(left)}")
        for pid in left:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
        time.sleep(0.05)


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return 0


class MemorySampler:
    """Peak of the summed PSS (MB) of ``root`` and its descendants but ``ignore``, polled every
    ``interval_s`` in a thread until ``stop()``."""

    def __init__(self, root: int, ignore: set[int], interval_s: float = 0.2) -> None:
        self.peak_mb = 0.0
        self._root, self._ignore, self._interval = root, ignore, interval_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.is_set():
            pids = ({self._root} | descendants(self._root)) - self._ignore
            self.peak_mb = max(self.peak_mb, sum(_pss_kb(p) for p in pids) / 1024)
            self._done.wait(self._interval)

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak_mb
