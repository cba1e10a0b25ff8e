"""The CI gate: ``--fail-under METRIC=VALUE`` thresholds checked against a metrics.json.

Pure: a metrics document and thresholds in, a verdict out. ``METRIC`` is a top-level figure of
``metrics.json`` (``map``, ``map_50``, ``map_75``, ``map_small``..., ``mar_100``...; ``mAP``,
``AP50``, ``AP75`` are accepted as the same) or a class's figure written ``FIGURE:CLASS``
(``ap_50:person``; FIGURE one of ``ap``, ``ap_50``, ``ap_75``, ``precision``, ``recall``,
``best_f1``). A figure the metrics do not have (a class absent from the data, AP undefined
without ground truth) fails its check: a gate never passes on a number it could not read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vmt.errors import InputError
from vmt.human_numbers import format_number

GATE_FAILED_EXIT_CODE = 3
"""Exit status of ``vmt run`` / ``vmt evaluate`` when a ``--fail-under`` threshold is not met
(1 stays "the command failed", 2 "bad usage")."""

RUN_METRICS = (
    "map", "map_50", "map_75", "map_small", "map_medium", "map_large",
    "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large",
)  # fmt: skip
CLASS_METRICS = ("ap", "ap_50", "ap_75", "precision", "recall", "best_f1")
_ALIASES = {"mAP": "map", "AP50": "map_50", "AP75": "map_75", "ap50": "map_50", "ap75": "map_75"}


@dataclass(frozen=True, slots=True)
class Threshold:
    """``metric >= minimum`` for the whole evaluation (``class_name`` None) or one class."""

    metric: str
    minimum: float
    class_name: str | None = None

    @property
    def name(self) -> str:
        return self.metric if self.class_name is None else f"{self.metric}:{self.class_name}"


def parse_threshold(text: str) -> Threshold:
    """``"map_50=0.8"`` or ``"ap_50:person=0.7"`` -> ``Threshold``. Raises ``InputError`` naming
    the known metrics when the name or the number is not understood."""
    name, sep, number = text.rpartition("=")
    if not sep or not name.strip():
        raise InputError(f"--fail-under {text!r}: expected METRIC=VALUE, e.g. map_50=0.8")
    try:
        minimum = float(number)
    except ValueError:
        raise InputError(f"--fail-under {text!r}: {number!r} is not a number") from None
    if not math.isfinite(minimum):
        raise InputError(f"--fail-under {text!r}: the value must be a finite number")
    metric, colon, class_name = name.strip().partition(":")
    metric = _ALIASES.get(metric, metric)
    if colon:
        if metric not in CLASS_METRICS or not class_name:
            raise InputError(
                f"--fail-under {text!r}: a class figure is FIGURE:CLASS with FIGURE one of "
                f"{', '.join(CLASS_METRICS)}"
            )
        return Threshold(metric, minimum, class_name)
    if metric not in RUN_METRICS:
        raise InputError(
            f"--fail-under {text!r}: unknown metric {metric!r}; use one of "
            f"{', '.join(RUN_METRICS)}, or FIGURE:CLASS (e.g. ap_50:person)"
        )
    return Threshold(metric, minimum)


def parse_thresholds(texts: Iterable[str]) -> list[Threshold]:
    return [parse_threshold(text) for text in texts]


@dataclass(frozen=True, slots=True)
class Check:
    threshold: Threshold
    value: float | None
    """The figure read from the metrics; None when they have none."""

    @property
    def passed(self) -> bool:
        return self.value is not None and self.value >= self.threshold.minimum

    def describe(self) -> str:
        minimum = format_number(self.threshold.minimum)
        if self.value is None:
            return f"{self.threshold.name} has no value (needs >= {minimum})"
        relation = ">=" if self.passed else "<"
        return f"{self.threshold.name} {format_number(self.value)} {relation} {minimum}"


@dataclass(frozen=True, slots=True)
class Verdict:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def reason(self) -> str:
        """One line: ``quality gate failed: map_50 0.7412 < 0.8; ap_50:cat 0.51 < 0.6``."""
        if self.passed:
            checked = "; ".join(check.describe() for check in self.checks)
            return f"quality gate passed: {checked}" if checked else "quality gate: no thresholds"
        return "quality gate failed: " + "; ".join(check.describe() for check in self.failures)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [
                {
                    "metric": c.threshold.name,
                    "minimum": c.threshold.minimum,
                    "value": c.value,
                    "passed": c.passed,
                }
                for c in self.checks
            ],
        }


def _figure(metrics: Mapping[str, Any], threshold: Threshold) -> float | None:
    if threshold.class_name is None:
        value = metrics.get(threshold.metric)
    else:
        per_class = metrics.get("per_class") or {}
        figures = per_class.get(threshold.class_name)
        value = figures.get(threshold.metric) if isinstance(figures, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def check_thresholds(metrics: Mapping[str, Any], thresholds: Iterable[Threshold]) -> Verdict:
    """Each threshold against ``metrics`` (a ``metrics.json`` document)."""
    return Verdict(tuple(Check(t, _figure(metrics, t)) for t in thresholds))
