"""Batches spread over processes and threads (``vmt.backends.process_batches``), in-process:
order kept, inputs read lazily, cancellation honoured. Worker processes are exercised by the
integration tests of staging and shard writing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from vmt.backends.process_batches import (
    chunked,
    map_batches,
    map_ordered,
    process_count,
    threads_per_process,
)
from vmt.config import load_settings
from vmt.errors import RunCancelled


@pytest.mark.parametrize(
    ("count", "size", "lengths"),
    [(0, 3, []), (2, 3, [2]), (3, 3, [3]), (7, 3, [3, 3, 1]), (5, 1, [1, 1, 1, 1, 1])],
)
def test_chunked_keeps_every_item_in_order(count: int, size: int, lengths: list[int]) -> None:
    chunks = list(chunked(range(count), size))
    assert [len(c) for c in chunks] == lengths
    assert [i for c in chunks for i in c] == list(range(count))


def test_map_ordered_yields_in_input_order_whatever_finishes_first() -> None:
    second_done = threading.Event()

    def work(i: int) -> int:
        if i == 0:
            assert second_done.wait(10), "item 1 never ran beside item 0"
        if i == 1:
            second_done.set()
        return i * 10

    assert list(map_ordered(work, range(6), workers=3)) == [0, 10, 20, 30, 40, 50]


def test_map_ordered_reads_items_lazily() -> None:
    taken: list[int] = []

    def items() -> Iterator[int]:
        for i in range(1000):
            taken.append(i)
            yield i

    results = map_ordered(lambda i: i, items(), workers=2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    assert len(taken) <= 3 + 2 * 2  # at most the window ahead
    results.close()


def test_one_process_runs_batches_here_with_one_worker() -> None:
    built: list[int] = []
    checks: list[int] = []

    def local() -> Callable[[tuple[int, ...]], int]:
        built.append(1)
        return sum

    out = map_batches(
        chunked(range(10), 4),
        local=local,
        setup=local,
        processes=1,
        check_cancelled=lambda: checks.append(1),
    )
    assert list(out) == [0 + 1 + 2 + 3, 4 + 5 + 6 + 7, 8 + 9]
    assert built == [1] and len(checks) == 3


def test_a_cancelled_run_stops_between_batches() -> None:
    done: list[int] = []

    def check() -> None:
        if len(done) == 2:
            raise RunCancelled("cancelled")

    def local() -> Callable[[int], int]:
        return lambda batch: done.append(batch) or batch

    with pytest.raises(RunCancelled):
        list(map_batches(range(10), local=local, setup=local, processes=1, check_cancelled=check))
    assert done == [0, 1]


@pytest.mark.parametrize(
    ("concurrency", "processes", "threads"), [(64, 2, 32), (64, 3, 22), (1, 4, 1), (8, 1, 8)]
)
def test_threads_share_the_concurrency(concurrency: int, processes: int, threads: int) -> None:
    settings = load_settings(staging_concurrency=concurrency)
    assert threads_per_process(settings, processes) == threads


def test_process_count_is_the_setting_or_the_cores() -> None:
    assert process_count(load_settings(staging_processes=3)) == 3
    assert process_count(load_settings(staging_processes=0)) >= 1
