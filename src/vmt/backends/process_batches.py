"""Batches of image work spread over worker processes: past the GIL, one core per process.

Image staging and shard writing are CPU-bound in Python (HTTP parsing, TLS, JSON, tar) and
GIL-bound in one process however many threads it runs. ``map_batches`` hands batches (a list of
samples, a shard's rows) to ``processes`` worker processes, each of which builds its own worker
once (``setup``: its own Cloud Storage client and image fetcher, threads inside) and runs every
batch it is given. Workers start with the SDKs already imported, not paying their import
(~1 s of CPU) each: forked from this process when it runs no other thread (a fork copies only
the calling thread, so it is safe only then), else forked by multiprocessing's fork server,
which imports the ``preload`` modules once when it starts.

Batches are consumed lazily and at most ``2 * processes`` are in flight, so memory is bounded
by that window, not by the run; results come back in the order the batches went in, so the
output is the same whatever the number of processes. With one process nothing is spawned:
the batches run in this process (``local`` builds their worker).
"""

from __future__ import annotations

import gc
import importlib
import itertools
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from vmt.config import Settings
from vmt.errors import BackendError

B = TypeVar("B")
R = TypeVar("R")
T = TypeVar("T")

_worker: Callable[[Any], Any] | None = None

_SDK_MODULES = ("google.cloud.storage", "google.auth.transport.requests", "requests")
"""Imported by the fork server besides ``preload``: what every worker's storage client needs."""


def process_count(settings: Settings) -> int:
    """``staging_processes``, or the number of CPU cores this process may use when it is 0."""
    if settings.staging_processes:
        return settings.staging_processes
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_process(settings: Settings, processes: int) -> int:
    """Each process's share of ``staging_concurrency`` (at least 1)."""
    return max(1, -(-settings.staging_concurrency // max(1, processes)))


def map_batches(
    batches: Iterable[B],
    *,
    local: Callable[[], Callable[[B], R]],
    setup: Callable[[], Callable[[B], R]],
    processes: int,
    check_cancelled: Callable[[], None],
    preload: Sequence[str] = (),
) -> Iterator[R]:
    """Each batch's result, in input order: ``worker(batch)`` with ``worker = local()`` here
    when ``processes`` <= 1, else in one of ``processes`` spawned processes with
    ``worker = setup()`` (built once per process; ``setup`` must pickle; ``preload``: modules
    the fork server imports first, effective when it starts). The workers are started before
    ``batches`` is first read. An exception raised
    for a batch is raised here, a worker that died as ``BackendError``; the pool is shut down
    (pending batches cancelled) when the caller stops."""
    if processes <= 1:
        worker = local()
        for batch in batches:
            check_cancelled()
            yield worker(batch)
        return
    context = _context([*_SDK_MODULES, *preload])
    with ProcessPoolExecutor(
        processes, mp_context=context, initializer=_install, initargs=(setup, dict(os.environ))
    ) as pool:
        try:
            # Start the workers (all at once with fork) before the first batch is read: reading
            # batches may start other threads (the storage SDK does, on its first calls).
            pool.submit(_ready).result()
            yield from _in_order(
                (pool.submit(_run, batch) for batch in batches), 2 * processes, check_cancelled
            )
        except BrokenProcessPool as exc:
            raise BackendError(
                "a staging worker process died or could not start (killed, out of memory, or "
                f"its set-up failed: see its error above): {exc}"
            ) from exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def chunked(items: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    """``items`` in tuples of ``size`` (the last one shorter), read lazily."""
    iterator = iter(items)
    while chunk := tuple(itertools.islice(iterator, size)):
        yield chunk


def _context(preload: list[str]) -> multiprocessing.context.BaseContext:
    if threading.active_count() == 1:
        for name in preload:
            importlib.import_module(name)
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload)
    return context


def map_ordered(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``fn`` over ``items`` on ``workers`` threads, results in input order, at most
    ``2 * workers`` in flight (so at most that many results held); ``items`` read lazily."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vmt-batch") as pool:
        try:
            yield from _in_order((pool.submit(fn, item) for item in items), 2 * workers, _no_check)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _in_order(
    submitted: Iterator[Future[R]], window: int, check_cancelled: Callable[[], None]
) -> Iterator[R]:
    pending: deque[Future[R]] = deque()
    for future in submitted:
        pending.append(future)
        if len(pending) >= window:
            check_cancelled()
            yield pending.popleft().result()
    while pending:
        check_cancelled()
        yield pending.popleft().result()


def _no_check() -> None:
    return None


def _install(setup: Callable[[], Callable[[Any], Any]], environ: dict[str, str]) -> None:
    """A worker sees the environment of the process that asked for it (the fork server's is
    that of when it started): ``STORAGE_EMULATOR_HOST``, proxies, credentials files."""
    global _worker
    # Objects inherited from the parent are never collected here: left to the collector, its
    # passes over them would write to every page and copy them all (copy-on-write).
    gc.freeze()
    os.environ.clear()
    os.environ.update(environ)
    _worker = setup()


def _ready() -> bool:
    return _worker is not None


def _run(batch: Any) -> Any:
    if _worker is None:
        raise RuntimeError("worker process not set up")
    return _worker(batch)
