"""A recording `RunContext` for driving the local trainer in tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vmt.domain import Sample
from vmt.errors import RunCancelled
from vmt.formats.export_options import ExportOptions
from vmt.formats.labelbox_export import read_samples


@dataclass
class RecordingContext:
    workdir: Path
    run_id: str = "run-test"
    cancel_after_checks: int | None = None
    """Raise RunCancelled on this many-th ``check_cancelled`` call (a crash mid-training)."""
    handles: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    progress_calls: list[tuple[int, int | None, str]] = field(default_factory=list)
    checks: int = 0

    def get_handle(self, key: str) -> str | None:
        return self.handles.get(key)

    def set_handle(self, key: str, value: str) -> None:
        self.handles[key] = value

    def event(self, message: str, **data: object) -> None:
        self.events.append((message, data))

    def progress(self, done: int, total: int | None = None, *, what: str = "") -> None:
        self.progress_calls.append((done, total, what))

    def check_cancelled(self) -> None:
        self.checks += 1
        if self.cancel_after_checks is not None and self.checks >= self.cancel_after_checks:
            raise RunCancelled("cancelled by the test")

    def detach(self) -> RecordingContext:
        return self

    def named(self, message: str) -> list[dict[str, object]]:
        return [data for name, data in self.events if name == message]


def samples_from_export(path: Path) -> list[Sample]:
    """Every row of an export as a Sample (the test fails on any rejection)."""
    items = list(read_samples(path, ExportOptions()))
    assert all(isinstance(item, Sample) for item in items), items
    return [item for item in items if isinstance(item, Sample)]
