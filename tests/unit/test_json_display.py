from __future__ import annotations

import io

import orjson

from vmt.cli.json_display import JsonRunDisplay
from vmt.pipeline.protocols import Stage


def test_events_and_throttled_progress_as_json_lines() -> None:
    out = io.StringIO()
    display = JsonRunDisplay(out)
    display.note("run r1")
    display.event("r1", Stage.TRAIN, "local training epoch", {"epoch": 1, "loss": 0.5})
    for done in range(1, 6):
        display.progress("r1", Stage.TRAIN, done, 10, "images")
    display.progress("r1", Stage.TRAIN, 10, 10, "images")  # the last one always
    display.event("r1", None, "run failed", {"error": "boom"})
    entries = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [e["message"] for e in entries] == [
        "run r1",
        "local training epoch",
        "progress",
        "progress",
        "run failed",
    ]
    assert entries[1]["stage"] == "train" and entries[1]["loss"] == 0.5
    assert [e["done"] for e in entries if e["message"] == "progress"] == [1, 10]
    assert entries[-1]["severity"] == "ERROR" and entries[-1]["error"] == "boom"
    assert all("time" in e for e in entries)
