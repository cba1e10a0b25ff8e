"""The one place the dashboard and ``vmt run --json`` read a run's headline figures from its
stored metrics summary.

The rule (the TEST split when it was evaluated, else validation + test; mAP and AP50) belongs to
the pipeline's typed stage results; this adapter is the single switch point to them for the
dashboard and the CLI summaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ROW_SET_NAMES: Mapping[str, str] = {"all": "validation + test", "test": "test"}


@dataclass(frozen=True, slots=True)
class Headline:
    rows: str
    """``test`` or ``all`` (validation + test)."""
    map: float | None
    ap50: float | None
    ap75: float | None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def headline_of(metrics: Mapping[str, Any]) -> Headline | None:
    """The headline of a run's metrics summary (``{"all": {...}, "test": {...}}``); None before
    the run was evaluated."""
    for rows in ("test", "all"):
        figures = metrics.get(rows)
        if isinstance(figures, Mapping):
            return Headline(
                rows=rows,
                map=_number(figures.get("mAP")),
                ap50=_number(figures.get("AP50")),
                ap75=_number(figures.get("AP75")),
            )
    return None
