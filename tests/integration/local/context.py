"""A recording `RunContext` for driving the local trainer in tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson

from vmt.domain import Box, Sample, Split
from vmt.errors import RunCancelled


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

    def named(self, message: str) -> list[dict[str, object]]:
        return [data for name, data in self.events if name == message]


def samples_from_export(path: Path) -> list[Sample]:
    """The synthetic export as Samples (a test stand-in for vmt.formats.labelbox_export)."""
    samples = []
    for line_no, line in enumerate(path.read_bytes().splitlines(), start=1):
        row = orjson.loads(line)
        (model,) = row["experiments"].values()
        (run,) = model["runs"].values()
        boxes = tuple(
            Box.from_ltwh(
                obj["name"],
                obj["bounding_box"]["left"],
                obj["bounding_box"]["top"],
                obj["bounding_box"]["width"],
                obj["bounding_box"]["height"],
            )
            for obj in run["labels"][0]["annotations"]["objects"]
        )
        media = row["media_attributes"]
        samples.append(
            Sample(
                data_row_id=row["data_row"]["id"],
                image_uri=row["data_row"]["row_data"],
                width=media["width"],
                height=media["height"],
                split=Split.parse(run["split"]),
                boxes=boxes,
                mime_type=media["mime_type"],
                global_key=row["data_row"]["global_key"],
                line=line_no,
            )
        )
    return samples
