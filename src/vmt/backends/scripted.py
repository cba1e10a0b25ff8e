"""``ScriptedTrainer``: a trainer whose jobs follow a script, for tests of what drives trainers.

Shipped with the package the way httpx ships ``MockTransport``: a runner, a scheduler or the
service can be tested against a trainer that launches and polls like a cloud one (its "cloud"
is a JSON file in the run folder, so a new process re-attaches to the job of the one that
crashed) without a fake server, and the trainer contract suite (``tests/contract``) holds it to
the same rules as the real trainers. Predictions are the ground truth boxes with a score.

    script = TrainerScript(train_polls=3, unpredictable=frozenset({"row7"}))
    trainer = ScriptedTrainer(script=script)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from vmt.config import Settings
from vmt.domain import Detection, Prediction, Rejection, Sample
from vmt.durable_files import write_atomic
from vmt.errors import BackendError, RunCancelled
from vmt.formats.outbound_policy import OutboundRules
from vmt.pipeline.protocols import Pending, Predicted, RunContext, Trained
from vmt.reasons import Reason

JOBS_FILE = "scripted_jobs.json"
TRAIN_HANDLE = "scripted.training_job"
PREDICT_HANDLE = "scripted.prediction_job"


@dataclass
class TrainerScript:
    """What a ``ScriptedTrainer``'s jobs do. One script may be shared by several trainers
    (processes): ``launched`` lists every job any of them created."""

    train_polls: int = 2
    """Looks at a training job that answer ``Pending`` before it succeeds."""
    predict_polls: int = 1
    poll_seconds: float = 0.01
    fail_training: str | None = None
    """When set, training jobs end failed with this message."""
    unpredictable: frozenset[str] = frozenset()
    """Data row ids the prediction job cannot predict (a rejection each)."""
    score: float = 0.9
    cost_usd: float | None = 1.25
    launched: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class ScriptedTrainer:
    """The ``Trainer`` Protocol over a script (see the module docstring)."""

    name = "scripted"

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        script: TrainerScript | None = None,
        outbound: OutboundRules | None = None,
    ) -> None:
        """``settings`` and ``outbound`` are what every registered trainer's builder is
        called with; unused: the script says everything and nothing is fetched."""
        self.script = script or TrainerScript()

    def prepare(self, ctx: RunContext, samples: Iterable[Sample]) -> Iterator[Sample | Rejection]:
        yield from samples

    def train(self, ctx: RunContext, samples: Iterable[Sample]) -> Trained | Pending:
        job = self._look(ctx, TRAIN_HANDLE, "training")
        if job["polls"] <= self.script.train_polls:
            return Pending(self.script.poll_seconds, f"scripted training, poll {job['polls']}")
        if self.script.fail_training is not None:
            raise BackendError(f"scripted training failed: {self.script.fail_training}")
        return Trained(model=f"scripted-model-of-{job['id']}", cost_usd=self.script.cost_usd)

    def predict(
        self, ctx: RunContext, model: str, samples: Iterable[Sample]
    ) -> Predicted | Pending:
        job = self._look(ctx, PREDICT_HANDLE, "prediction")
        if job["polls"] <= self.script.predict_polls:
            return Pending(self.script.poll_seconds, "scripted prediction")
        return Predicted(self._rows(samples))

    def cancel(self, ctx: RunContext) -> None:
        jobs = _read_jobs(ctx.workdir)
        running = [
            handle
            for handle in (TRAIN_HANDLE, PREDICT_HANDLE)
            if (job_id := ctx.get_handle(handle)) is not None and job_id in jobs
        ]
        for handle in running:
            jobs[str(ctx.get_handle(handle))]["cancelled"] = True
        if running:
            _write_jobs(ctx.workdir, jobs)
            ctx.event("scripted job cancelled")

    def _look(self, ctx: RunContext, handle: str, kind: str) -> dict[str, Any]:
        """Launch the job behind ``handle`` if the run has none, then count one look at it."""
        jobs = _read_jobs(ctx.workdir)
        job_id = ctx.get_handle(handle)
        if job_id is None or job_id not in jobs:
            with self.script.lock:
                job_id = f"{kind}-{len(self.script.launched) + 1}-{ctx.run_id}"
                self.script.launched.append(job_id)
            jobs[job_id] = {"id": job_id, "kind": kind, "polls": 0, "cancelled": False}
            ctx.set_handle(handle, job_id)
            ctx.event(f"scripted {kind} launched", job=job_id)
        job = jobs[job_id]
        if job["cancelled"]:
            raise RunCancelled(f"scripted {kind} job {job_id} was cancelled")
        job["polls"] += 1
        _write_jobs(ctx.workdir, jobs)
        return job

    def _rows(self, samples: Iterable[Sample]) -> Iterator[Prediction | Rejection]:
        for sample in samples:
            if sample.data_row_id in self.script.unpredictable:
                yield Rejection(
                    Reason.PREDICTION_FAILED, sample.line, sample.data_row_id, "scripted failure"
                )
            else:
                detections = tuple(Detection(box, self.script.score) for box in sample.boxes)
                yield Prediction(sample.data_row_id, detections)


def _read_jobs(workdir: Path) -> dict[str, dict[str, Any]]:
    path = workdir / JOBS_FILE
    if not path.is_file():
        return {}
    jobs: dict[str, dict[str, Any]] = orjson.loads(path.read_bytes())
    return jobs


def _write_jobs(workdir: Path, jobs: dict[str, dict[str, Any]]) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    write_atomic(workdir / JOBS_FILE, orjson.dumps(jobs))
