"""A small ``RunContext`` for backend tests: handles kept in a JSON file (so a second process,
or a second attempt after a simulated crash, sees what the first one recorded)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmt.errors import RunCancelled


@dataclass
class SimpleRunContext:
    run_id: str
    workdir: Path
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    progress_calls: list[tuple[int, int | None, str]] = field(default_factory=list)
    cancelled: bool = False

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def _handles_path(self) -> Path:
        return self.workdir / "handles.json"

    def handles(self) -> dict[str, str]:
        if not self._handles_path.exists():
            return {}
        loaded: dict[str, str] = json.loads(self._handles_path.read_text())
        return loaded

    def get_handle(self, key: str) -> str | None:
        return self.handles().get(key)

    def set_handle(self, key: str, value: str) -> None:
        handles = self.handles()
        handles[key] = value
        partial = self._handles_path.with_suffix(".partial")
        partial.write_text(json.dumps(handles))
        partial.replace(self._handles_path)  # atomic: a SIGKILL never leaves half a file

    def event(self, message: str, **data: object) -> None:
        self.events.append((message, dict(data)))

    def progress(self, done: int, total: int | None = None, *, what: str = "") -> None:
        self.progress_calls.append((done, total, what))

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise RunCancelled("cancelled")

    def detach(self) -> SimpleRunContext:
        return self
