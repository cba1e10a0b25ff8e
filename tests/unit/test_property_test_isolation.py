"""Property tests stay deterministic while other threads use the global `random` module.

google-cloud-storage draws multipart boundaries from the global `random` in threads that
integration tests leave behind; Hypothesis notices the state change and warns. The warning is
filtered in pyproject.toml (it once failed CI at random); this test fails if the filter goes.
"""

from __future__ import annotations

import random
import threading

from hypothesis import given, settings
from hypothesis import strategies as st


def test_a_thread_using_global_random_does_not_fail_a_property_test() -> None:
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            random.getrandbits(64)

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    drawn: list[int] = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(st.lists(st.one_of(st.none(), st.integers(), st.text()), max_size=20))
    def holds(values: list[int | str | None]) -> None:
        drawn.append(len(values))
        assert len(values) <= 20

    try:
        holds()
    finally:
        stop.set()
        thread.join()
    assert len(drawn) >= 100
