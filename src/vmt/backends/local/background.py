"""Local training as a job: launched on a thread of this process, then polled.

Training the local detector is CPU-bound work that takes minutes; the process that launched it
goes on advancing and polling other runs meanwhile (torch releases the GIL in its kernels). A
job is keyed by its run folder: launching twice in one process starts one thread. The process
that trains is recorded as the run's ``local.training`` handle (``host:pid``), so another
process polling the same run waits for it instead of starting a second training; when that
process is gone, the next poll launches again and training resumes from its last checkpoint.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vmt.pipeline.lease import LeaseHolder
from vmt.pipeline.protocols import Pending, RunContext, Trained

TRAINING_HANDLE = "local.training"
POLL_SECONDS = 1.0
"""How soon to look again at a local training (a look costs a few milliseconds)."""


@dataclass
class TrainingJob:
    """One training thread and what it ended with."""

    result: Trained | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


_jobs: dict[Path, TrainingJob] = {}
_lock = threading.Lock()


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _trained_elsewhere(ctx: RunContext) -> str | None:
    """The ``host:pid`` of another live process of this host training the run, else None."""
    recorded = ctx.get_handle(TRAINING_HANDLE)
    if recorded is None or recorded == this_process():
        return None
    host, _, pid = recorded.rpartition(":")
    holder = LeaseHolder(host, int(pid) if pid.isdigit() else -1, "")
    if host == socket.gethostname() and holder.pid > 0 and not holder.is_gone():
        return recorded
    return None


def launch_or_poll(
    ctx: RunContext, key: Path, train: Callable[[RunContext], Trained]
) -> Trained | Pending:
    """The training of the run whose folder is ``key``: started on a thread running
    ``train(detached context)`` when none runs, then ``Pending`` until it ends, then its
    result (or its error, raised here once)."""
    with _lock:
        job = _jobs.get(key)
        if job is not None and job.done.is_set():
            del _jobs[key]
            if job.error is not None:
                raise job.error
            assert job.result is not None
            return job.result
        if job is not None:
            return Pending(POLL_SECONDS, "local training")
        elsewhere = _trained_elsewhere(ctx)
        if elsewhere is not None:
            return Pending(POLL_SECONDS, f"local training in process {elsewhere}")
        detached = ctx.detach()
        ctx.set_handle(TRAINING_HANDLE, this_process())
        ctx.event("local training launched", process=this_process())
        job = TrainingJob()
        _jobs[key] = job
        threading.Thread(
            target=_run, args=(job, train, detached), daemon=True, name=f"vmt-train-{key.name}"
        ).start()
    return Pending(POLL_SECONDS, "local training")


def _run(job: TrainingJob, train: Callable[[RunContext], Trained], ctx: RunContext) -> None:
    try:
        job.result = train(ctx)
    except BaseException as exc:  # noqa: BLE001 - handed to the next poll, which raises it
        job.error = exc
    finally:
        job.done.set()


def wait_until_done(key: Path, timeout: float | None = None) -> bool:
    """Block until the training of ``key`` in this process has ended (True), or ``timeout``
    passed (False); True when none runs. For tests and for shutting down."""
    with _lock:
        job = _jobs.get(key)
    return True if job is None else job.done.wait(timeout)
