"""How soon a Vertex job is looked at again: from its age, so a restart changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vmt.backends.vertex.calls import poll_delay
from vmt.config import load_settings

SETTINGS = load_settings(vertex_poll_seconds=60.0, vertex_poll_max_seconds=600.0)


def _ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("age_seconds", "delay"),
    [
        (0, 60.0),  # a new job: the first delay
        (100, 60.0),  # young: never under the first delay
        (300, 150.0),  # half its age
        (1_000, 500.0),
        (3 * 3600, 600.0),  # hours old: the cap
    ],
)
def test_the_delay_is_half_the_age_between_the_first_delay_and_the_cap(
    age_seconds: float, delay: float
) -> None:
    assert poll_delay(SETTINGS, _ago(age_seconds)) == pytest.approx(delay, rel=1e-3)


def test_a_job_without_a_creation_time_gets_the_first_delay() -> None:
    assert poll_delay(SETTINGS, None) == 60.0


def test_a_naive_timestamp_is_read_as_utc() -> None:
    naive = (datetime.now(UTC) - timedelta(seconds=1_000)).replace(tzinfo=None)
    assert poll_delay(SETTINGS, naive) == pytest.approx(500.0, rel=1e-3)
