"""Numbers and durations as people read them: 4 significant digits, ``3 min 42 s``.

Used by the terminal (log lines, progress) and the dashboard, so both round the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

SIGNIFICANT_DIGITS = 4


def format_number(value: object, *, digits: int = SIGNIFICANT_DIGITS) -> str:
    """``0.9816967132232749`` -> ``0.9817``; ``222.76027923699996`` -> ``222.8``; integers,
    booleans and text unchanged; ``None`` -> ``–``. Large floats keep their integer digits
    (``123456.7`` -> ``123457``) rather than switching to exponents."""
    if value is None:
        return "–"
    if isinstance(value, bool | int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0:
            return "0"
        magnitude = math.floor(math.log10(abs(value)))
        if magnitude >= digits - 1:
            return f"{value:.0f}"
        if magnitude < -4:
            return f"{value:.{digits - 1}e}"
        decimals = digits - 1 - magnitude
        return f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return str(value)


def format_fields(data: Mapping[str, object], *, skip: tuple[str, ...] = ()) -> str:
    """``key=value`` pairs on one line with every number rounded (``val_ap50=0.9817``)."""
    return " ".join(f"{k}={format_number(v)}" for k, v in data.items() if k not in skip)


def format_duration(seconds: float | None) -> str:
    """``0.4`` -> ``0.4 s``, ``222.76`` -> ``3 min 43 s``, ``7384`` -> ``2 h 3 min``."""
    if seconds is None:
        return "–"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
