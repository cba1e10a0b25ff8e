"""A run's state kept in its own folder, for orchestrators without a run store.

In a Vertex AI pipeline every step runs in a fresh container; what one step leaves for the next
(handles of external resources, stage outputs, the failure message) lives next to the stage
files in the run folder, which is a folder under the pipeline root in GCS (mounted read/write at
``/gcs/<bucket>/...`` in pipeline steps). Files:

- ``handles.json``: ``{key: value}``; rewritten atomically on each ``set_handle``.
- ``events.jsonl``: one ``{"ts", "stage", "message", "data"}`` object per line, appended.
- ``stages/<stage>.json``: the outputs of a finished stage.
- ``failure.json``: ``{"stage", "message"}`` of the step that failed (the exit handler reads it).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson

from vmt.durable_files import write_atomic
from vmt.pipeline.protocols import Stage
from vmt.pipeline.results import StageResult

log = logging.getLogger("vmt")

GCS_MOUNT_ENV = "VMT_GCS_MOUNT"
"""Where buckets are mounted in pipeline steps (Vertex AI: ``/gcs``)."""

HANDLES_FILE = "handles.json"
EVENTS_FILE = "events.jsonl"
STAGES_DIR = "stages"
FAILURE_FILE = "failure.json"


def local_path(run_dir: str) -> Path:
    """The file-system path of a run folder: ``gs://b/p`` -> ``$VMT_GCS_MOUNT/b/p`` (default
    ``/gcs/b/p``, Vertex AI's bucket mount); a local path stays as it is."""
    if run_dir.startswith("gs://"):
        return Path(os.environ.get(GCS_MOUNT_ENV, "/gcs")) / run_dir.removeprefix("gs://")
    return Path(run_dir)


class FolderRunContext:
    """The ``RunContext`` of a pipeline step: handles, events and stage outputs in the run
    folder. Never cancelled from inside: Vertex AI stops the step's container on cancel."""

    def __init__(self, run_id: str, workdir: Path) -> None:
        self._run_id = run_id
        self._workdir = workdir
        self.stage: Stage | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / STAGES_DIR).mkdir(exist_ok=True)

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def workdir(self) -> Path:
        return self._workdir

    # --- handles -------------------------------------------------------------------------
    def handles(self) -> dict[str, str]:
        path = self._workdir / HANDLES_FILE
        if not path.is_file():
            return {}
        loaded: dict[str, str] = orjson.loads(path.read_bytes())
        return loaded

    def get_handle(self, key: str) -> str | None:
        return self.handles().get(key)

    def set_handle(self, key: str, value: str) -> None:
        handles = self.handles()
        handles[key] = value
        write_atomic(self._workdir / HANDLES_FILE, orjson.dumps(handles))
        self.event("handle recorded", key=key, value=value)

    # --- events and progress -------------------------------------------------------------
    def event(self, message: str, **data: object) -> None:
        record = {"ts": time.time(), "stage": self.stage, "message": message, "data": data}
        with (self._workdir / EVENTS_FILE).open("ab") as out:
            out.write(orjson.dumps(record, default=str) + b"\n")
        log.info("run %s%s: %s", self._run_id, f" [{self.stage}]" if self.stage else "", message)

    def events(self) -> list[dict[str, Any]]:
        path = self._workdir / EVENTS_FILE
        if not path.is_file():
            return []
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]

    def progress(self, done: int, total: int | None = None, *, what: str = "") -> None:
        return None

    def check_cancelled(self) -> None:
        return None

    def detach(self) -> FolderRunContext:
        return self

    # --- stage outputs and the failure ---------------------------------------------------
    def stage_outputs(self, stage: Stage) -> dict[str, Any] | None:
        path = self._workdir / STAGES_DIR / f"{stage.value}.json"
        if not path.is_file():
            return None
        outputs: dict[str, Any] = orjson.loads(path.read_bytes())
        return outputs

    def set_stage_outputs(self, stage: Stage, outputs: dict[str, Any]) -> None:
        write_atomic(self._workdir / STAGES_DIR / f"{stage.value}.json", orjson.dumps(outputs))

    def failure(self) -> dict[str, str] | None:
        path = self._workdir / FAILURE_FILE
        if not path.is_file():
            return None
        failure: dict[str, str] = orjson.loads(path.read_bytes())
        return failure

    def set_failure(self, stage: Stage, message: str) -> None:
        write_atomic(
            self._workdir / FAILURE_FILE, orjson.dumps({"stage": stage.value, "message": message})
        )

    def clear_failure(self) -> None:
        (self._workdir / FAILURE_FILE).unlink(missing_ok=True)

    # --- as a StageLedger ----------------------------------------------------------------
    def stage_result(self, stage: Stage) -> dict[str, Any] | None:
        return self.stage_outputs(stage)

    def record_result(self, stage: Stage, result: StageResult) -> None:
        self.set_stage_outputs(stage, result.to_json())
