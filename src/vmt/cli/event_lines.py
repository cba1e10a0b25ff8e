"""Run events as a person reads them in a terminal: one short line each, numbers rounded to
4 significant digits, bookkeeping (handles recorded, stage started) left to ``vmt runs show``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vmt.human_numbers import format_duration, format_fields, format_number

QUIET_EVENTS = frozenset(
    {
        "stage started",
        "handle recorded",
        "advancing run",
        "stage already done; not redone",
        "labelbox status updated",
    }
)
"""Recorded in the run store and shown by ``vmt runs show``; not worth a terminal line."""


def _epoch(data: Mapping[str, Any]) -> str:
    epoch, planned = data.get("epoch"), data.get("planned_epochs")
    ap50 = data.get("val_ap50")
    parts = [f"epoch {epoch}" + (f"/{planned}" if planned else "")]
    if data.get("loss") is not None:
        parts.append(f"loss {format_number(data['loss'])}")
    parts.append(f"val AP50 {format_number(ap50)}")
    if data.get("elapsed") is not None:
        parts.append(format_duration(float(data["elapsed"])))
    return " · ".join(parts)


def _training_finished(data: Mapping[str, Any]) -> str:
    return (
        f"training finished: {data.get('epochs')} epochs, best val AP50 "
        f"{format_number(data.get('best_val_ap50'))} at epoch {data.get('best_epoch')} "
        f"({data.get('stopped')})"
    )


def _stage_done(data: Mapping[str, Any]) -> str:
    figures = format_fields(data)
    return "done" + (f" · {figures}" if figures else "")


_RENDERERS: Mapping[str, Callable[[Mapping[str, Any]], str]] = {
    "local training epoch": _epoch,
    "local training finished": _training_finished,
    "stage done": _stage_done,
}


def event_line(stage: str | None, message: str, data: Mapping[str, Any]) -> str | None:
    """The terminal line for a run event, or None for a quiet one.

    ``("train", "local training epoch", {"epoch": 1, "loss": 6.633977731068929, ...})`` ->
    ``"train: epoch 1/3 · loss 6.634 · val AP50 0.9817 · 12.0 s"``."""
    if message in QUIET_EVENTS:
        return None
    render = _RENDERERS.get(message)
    if render is not None:
        text = render(data)
    else:
        error = data.get("error")
        fields = format_fields(data, skip=("error",))
        text = message + (f" ({error})" if error else "") + (f" · {fields}" if fields else "")
    return f"{stage}: {text}" if stage else text
