"""The pipelineJobs routes of the fake Vertex AI REST API (``FakeVertex.pipeline_jobs``).

- ``POST {parent}/pipelineJobs?pipelineJobId=ID``: creates the job RUNNING, or answers 409
  ALREADY_EXISTS when a job with that id exists (what makes one job per model run certain);
  an id outside ``[a-z][-a-z0-9]{0,127}`` gets 400 INVALID_ARGUMENT.
- ``GET {parent}/pipelineJobs/ID``, ``GET {parent}/pipelineJobs?filter=labels.k="v" AND ...``.
- ``POST {parent}/pipelineJobs/ID:cancel``: CANCELLING, then CANCELLED on the next read.

Tests move a job along with ``advance`` (task details as Vertex reports them) and ``finish``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_JOB_ID = re.compile(r"[a-z][-a-z0-9]{0,127}")
_LABEL_FILTER = re.compile(r'labels\.([\w.-]+)\s*=\s*"?([^"\s]*)"?')
STAGES = ("export", "prepare", "train", "predict", "evaluate", "publish")


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class FakePipelineJobs:
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    create_requests: int = 0
    """POSTs to create (including those refused as ALREADY_EXISTS)."""
    _clock: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def routes(self, parent: str) -> list[tuple[str, str, Any]]:
        return [
            ("POST", rf"({parent})/pipelineJobs", self._create),
            ("GET", rf"{parent}/pipelineJobs", self._list),
            ("GET", rf"({parent}/pipelineJobs/[^/:]+)", self._get),
            ("POST", rf"({parent}/pipelineJobs/[^/:]+):cancel", self._cancel),
        ]

    # --- what tests do -----------------------------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any]:
        (job,) = [j for name, j in self.jobs.items() if name.endswith(f"/pipelineJobs/{job_id}")]
        return job

    def advance(self, job_id: str, *, done: int, running: str | None = None) -> None:
        """The first ``done`` stages SUCCEEDED, ``running`` (if any) RUNNING."""
        tasks = [_task(name, "SUCCEEDED") for name in STAGES[:done]]
        if running:
            tasks.append(_task(running, "RUNNING"))
        self.job(job_id)["jobDetail"] = {"taskDetails": tasks}

    def finish(
        self, job_id: str, state: str, *, failed_task: str | None = None, error: str = ""
    ) -> None:
        """End the job: SUCCEEDED, CANCELLED, or FAILED in ``failed_task`` with ``error``."""
        job = self.job(job_id)
        job["state"] = f"PIPELINE_STATE_{state}"
        if failed_task is not None:
            done = STAGES.index(failed_task)
            tasks = [_task(name, "SUCCEEDED") for name in STAGES[:done]]
            tasks.append({**_task(failed_task, "FAILED"), "error": {"code": 9, "message": error}})
            job["jobDetail"] = {"taskDetails": tasks}
        if state == "FAILED":
            job["error"] = {"code": 9, "message": error or "The DAG failed."}

    # --- routes ------------------------------------------------------------------------------
    def _now(self) -> str:
        self._clock += timedelta(seconds=1)
        return self._clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _create(self, match: re.Match[str], query: dict[str, list[str]], body: Any) -> Any:
        self.create_requests += 1
        job_id = query.get("pipelineJobId", [""])[0]
        if not _JOB_ID.fullmatch(job_id):
            raise Refused(400, "INVALID_ARGUMENT", f"invalid pipeline job id {job_id!r}")
        name = f"{match[1]}/pipelineJobs/{job_id}"
        if name in self.jobs:
            raise Refused(409, "ALREADY_EXISTS", f"PipelineJob {name} already exists")
        now = self._now()
        job = {
            **body,
            "name": name,
            "state": "PIPELINE_STATE_RUNNING",
            "createTime": now,
            "startTime": now,
            "updateTime": now,
            "jobDetail": {"taskDetails": []},
        }
        self.jobs[name] = job
        return job

    def _get(self, match: re.Match[str], query: Any, body: Any) -> Any:
        job = self.jobs[match[1]]
        if job["state"] == "PIPELINE_STATE_CANCELLING":
            job["state"] = "PIPELINE_STATE_CANCELLED"
        return job

    def _list(self, match: re.Match[str], query: dict[str, list[str]], body: Any) -> Any:
        wanted = _LABEL_FILTER.findall(query.get("filter", [""])[0])
        found = [
            job
            for job in self.jobs.values()
            if all(job.get("labels", {}).get(k) == v for k, v in wanted)
        ]
        return {"pipelineJobs": found} if found else {}

    def _cancel(self, match: re.Match[str], query: Any, body: Any) -> Any:
        job = self.jobs[match[1]]
        if job["state"] not in ("PIPELINE_STATE_RUNNING", "PIPELINE_STATE_PENDING"):
            raise Refused(400, "FAILED_PRECONDITION", "the pipeline job has ended")
        job["state"] = "PIPELINE_STATE_CANCELLING"
        return {}


def _task(name: str, state: str) -> dict[str, Any]:
    return {"taskName": name, "state": state, "startTime": "2026-01-01T00:00:00Z"}
