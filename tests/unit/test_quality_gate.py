from __future__ import annotations

import pytest

from vmt.errors import InputError
from vmt.quality_gate import Threshold, check_thresholds, parse_threshold

METRICS = {
    "map": 0.41,
    "map_50": 0.7412345,
    "per_class": {"person": {"ap_50": 0.51, "ap": None}, "a=b": {"ap_50": 0.9}},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("map_50=0.8", Threshold("map_50", 0.8)),
        ("AP50=0.8", Threshold("map_50", 0.8)),  # alias of the run summary
        ("mAP=.5", Threshold("map", 0.5)),
        ("ap_50:person=0.6", Threshold("ap_50", 0.6, "person")),
        ("ap_50:a=b=0.6", Threshold("ap_50", 0.6, "a=b")),  # the value is after the last '='
        (" mar_100 =0.3", Threshold("mar_100", 0.3)),
    ],
)
def test_parse(text: str, expected: Threshold) -> None:
    assert parse_threshold(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("map_50", "METRIC=VALUE"),
        ("=0.5", "METRIC=VALUE"),
        ("map50=0.5", "unknown metric"),
        ("map_50=nan", "finite"),
        ("map_50=x", "not a number"),
        ("gt_count:person=3", "FIGURE:CLASS"),
        ("ap_50:=0.3", "FIGURE:CLASS"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_threshold(text)


def test_verdict_names_only_the_failures_in_one_line() -> None:
    verdict = check_thresholds(
        METRICS,
        [parse_threshold(t) for t in ("map_50=0.8", "map=0.4", "ap_50:person=0.6")],
    )
    assert not verdict.passed
    assert verdict.reason() == ("quality gate failed: map_50 0.7412 < 0.8; ap_50:person 0.51 < 0.6")
    assert "\n" not in verdict.reason()
    assert [c["passed"] for c in verdict.to_json()["checks"]] == [False, True, False]


def test_a_missing_figure_fails() -> None:
    verdict = check_thresholds(
        METRICS, [parse_threshold("ap:person=0"), parse_threshold("ap_50:zebra=0")]
    )
    assert not verdict.passed
    assert "ap:person has no value" in verdict.reason()
    assert "ap_50:zebra has no value" in verdict.reason()


def test_equal_passes() -> None:
    verdict = check_thresholds(METRICS, [parse_threshold("map=0.41")])
    assert verdict.passed
    assert verdict.reason() == "quality gate passed: map 0.41 >= 0.41"
