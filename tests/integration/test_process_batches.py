"""Batches on real worker processes (``vmt.backends.process_batches.map_batches``): results in
order, the caller's environment seen by the workers, a worker that cannot start reported as a
BackendError."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from vmt.backends.process_batches import map_batches
from vmt.errors import BackendError


def _env_worker() -> Callable[[int], tuple[int, str, int]]:
    def work(batch: int) -> tuple[int, str, int]:
        return batch, os.environ.get("VMT_BATCH_MARK", ""), os.getpid()

    return work


def _broken_worker() -> Callable[[int], int]:
    raise RuntimeError("no credentials here")


def _go_on() -> None:
    return None


def test_workers_answer_in_order_with_the_callers_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VMT_BATCH_MARK", "set-after-import")
    out = list(
        map_batches(range(8), local=_env_worker, setup=_env_worker, processes=2,
                    check_cancelled=_go_on)
    )  # fmt: skip
    assert [(batch, mark) for batch, mark, _ in out] == [(i, "set-after-import") for i in range(8)]
    assert os.getpid() not in {pid for _, _, pid in out}


def test_a_worker_that_cannot_start_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="worker process"):
        list(
            map_batches(range(3), local=_broken_worker, setup=_broken_worker, processes=2,
                        check_cancelled=_go_on)
        )  # fmt: skip
