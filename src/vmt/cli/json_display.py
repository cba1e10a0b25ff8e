"""Machine logs of an advancing run (``--json`` or ``VMT_LOG_JSON=1``): one JSON object per
line on stderr, events as they happen and progress at most once a second per stage."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

import orjson

from vmt.pipeline.context import RunObserver
from vmt.pipeline.protocols import Stage

PROGRESS_INTERVAL = 1.0


class JsonRunDisplay(RunObserver):
    """The same calls as ``RichRunDisplay`` (``note``, ``event``, ``progress``), as JSON lines."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._last_progress: dict[Stage | None, float] = {}

    def __enter__(self) -> JsonRunDisplay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def _write(self, entry: dict[str, Any]) -> None:
        entry = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **entry}
        self._stream.write(orjson.dumps(entry, default=str).decode() + "\n")
        self._stream.flush()

    def note(self, message: str) -> None:
        self._write({"severity": "INFO", "message": message})

    def event(
        self, run_id: str, stage: Stage | None, message: str, data: Mapping[str, Any]
    ) -> None:
        severity = "ERROR" if message == "run failed" else "INFO"
        self._write(
            {
                "severity": severity,
                "run_id": run_id,
                "stage": stage.value if stage else None,
                "message": message,
                **{k: v for k, v in data.items() if k not in ("time", "severity")},
            }
        )

    def progress(
        self, run_id: str, stage: Stage | None, done: int, total: int | None, what: str
    ) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self._last_progress.get(stage, 0.0) < PROGRESS_INTERVAL:
            return
        self._last_progress[stage] = now
        self._write(
            {
                "severity": "INFO",
                "run_id": run_id,
                "stage": stage.value if stage else None,
                "message": "progress",
                "done": done,
                "total": total,
                "what": what,
            }
        )
