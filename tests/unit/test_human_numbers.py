from __future__ import annotations

import pytest

from vmt.cli.event_lines import event_line
from vmt.human_numbers import format_duration, format_fields, format_number


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.9816967132232749, "0.9817"),  # the demo's val_ap50
        (222.76027923699996, "222.8"),  # the demo's elapsed
        (6.633977731068929, "6.634"),
        (0.5, "0.5"),  # no trailing zeros
        (0.0, "0"),
        (123456.7, "123457"),  # integer digits kept
        (0.000012345, "1.234e-05"),
        (-0.0123456, "-0.01235"),
        (42, "42"),
        (True, "True"),
        (None, "–"),
        ("planned epochs", "planned epochs"),
        (float("inf"), "inf"),
    ],
)
def test_format_number(value: object, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.44, "0.4 s"), (12.4, "12 s"), (222.76, "3 min 43 s"), (7384, "2 h 3 min"), (None, "–")],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_fields() -> None:
    assert format_fields({"a": 0.123456, "b": 3, "error": "x"}, skip=("error",)) == "a=0.1235 b=3"


def test_epoch_event_reads_as_one_short_line() -> None:
    data = {
        "epoch": 1,
        "loss": 6.633977731068929,
        "val_ap50": 0.9816967132232749,
        "elapsed": 11.981158644000061,
        "planned_epochs": 3,
    }
    line = event_line("train", "local training epoch", data)
    assert line == "train: epoch 1/3 · loss 6.634 · val AP50 0.9817 · 12 s"


def test_bookkeeping_events_are_quiet_and_others_rounded() -> None:
    assert event_line("train", "handle recorded", {"key": "model"}) is None
    line = event_line("export", "export copied", {"bytes": 66879, "ratio": 0.333333333})
    assert line == "export: export copied · bytes=66879 ratio=0.3333"
    failed = event_line(None, "run failed", {"error": "boom"})
    assert failed == "run failed (boom)"
