from __future__ import annotations

from pathlib import Path

from tests.fakes.simple_run_context import SimpleRunContext
from vmt.backends.vertex.calls import poll_until_done
from vmt.config import load_settings


def _poll(ctx: SimpleRunContext, answers: list[bool], sleeps: list[float]) -> None:
    remaining = iter(answers)
    poll_until_done(
        ctx,
        load_settings(vertex_poll_seconds=1.0, vertex_poll_max_seconds=4.0),
        lambda: next(remaining),
        lambda done: done,
        describe="poll",
        sleep=sleeps.append,
        delay_handle="job.poll_delay",
    )


def test_delay_grows_to_the_cap_and_carries_over_a_restart(tmp_path: Path) -> None:
    ctx = SimpleRunContext("r", tmp_path)
    first: list[float] = []
    _poll(ctx, [False, False, False, False, True], first)
    assert first == [1.0, 1.5, 2.25, 3.375]
    assert ctx.get_handle("job.poll_delay") == "4"

    again: list[float] = []  # a new process: polls at once, then waits as long as before
    _poll(SimpleRunContext("r", tmp_path), [False, False, True], again)
    assert again == [4.0, 4.0]


def test_done_at_the_first_poll_never_sleeps(tmp_path: Path) -> None:
    sleeps: list[float] = []
    _poll(SimpleRunContext("r", tmp_path), [True], sleeps)
    assert sleeps == []
