"""The seams between the pipeline and the outside world.

A run goes ``export -> prepare -> train -> predict -> evaluate -> publish``. The runner owns
ordering, persistence, retries and the lease; backends (``vmt.backends.*``) implement these small
Protocols and touch the outside world. A test swaps the world at exactly this seam.

Contract for every backend method: it may be called again after a crash at any point, so it
must be idempotent. Any external job or resource is recorded with ``ctx.set_handle`` the moment
it is obtained (before waiting on it), and looked up with ``ctx.get_handle`` before creating one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from vmt.domain import Prediction, Rejection, Sample


class Stage(StrEnum):
    EXPORT = "export"
    PREPARE = "prepare"
    TRAIN = "train"
    PREDICT = "predict"
    EVALUATE = "evaluate"
    PUBLISH = "publish"


class RunStatus(StrEnum):
    """The Labelbox model-run training statuses."""

    EXPORTING_DATA = "EXPORTING_DATA"
    PREPARING_DATA = "PREPARING_DATA"
    TRAINING_MODEL = "TRAINING_MODEL"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


STAGE_STATUS: Mapping[Stage, RunStatus] = {
    Stage.EXPORT: RunStatus.EXPORTING_DATA,
    Stage.PREPARE: RunStatus.PREPARING_DATA,
    Stage.TRAIN: RunStatus.TRAINING_MODEL,
    Stage.PREDICT: RunStatus.TRAINING_MODEL,
    Stage.EVALUATE: RunStatus.TRAINING_MODEL,
    Stage.PUBLISH: RunStatus.TRAINING_MODEL,
}


class TrainingPlanned(Exception):
    """Raised by ``Trainer.train`` when it stopped on purpose before launching (a dry run):
    everything before the launch is done and the plan (e.g. the cost) is ``str(exc)``. The
    runner ends the run as ``planned``; ``vmt resume`` launches it."""


DRY_RUN_OPTION = "vertex_dry_run"
"""The trainer option of a dry run; ``Runner.advance`` turns it off to launch a planned run."""

MODEL_HANDLE = "model"
"""Handle the runner records after training: the trained model's reference (path or resource)."""

REPORT_HANDLE = "report"
"""Handle a sink may record on publish: where users find the report (path or URL)."""


@dataclass(frozen=True, slots=True)
class Pending:
    """A trainer's answer while its job runs: nothing to return yet, ask again in ``seconds``.

    ``what`` says what is being waited on (``"training pipeline RUNNING"``), for displays."""

    seconds: float
    what: str = ""


@dataclass(frozen=True, slots=True)
class Trained:
    """A finished training: the model reference (a local path or a Vertex model resource),
    what it cost (USD, None when the trainer does not know) and the trainer's own evaluation
    of the model when it has one (a JSON object, kept in ``metrics.json``)."""

    model: str
    cost_usd: float | None = None
    evaluation: Mapping[str, Any] | None = None
    summary: Mapping[str, str | int | float | bool | None] = field(default_factory=dict)
    """Figures about the training (epochs, stop reason...) for the run's events."""


@dataclass(frozen=True, slots=True)
class Predicted:
    """A finished prediction: one item per sample given, in any order: its ``Prediction``,
    or a ``Rejection`` (reason ``prediction_failed``) saying why it could not be predicted.
    ``rows`` may be lazy (read from the job's output files as they are consumed)."""

    rows: Iterable[Prediction | Rejection]


class RunContext(Protocol):
    """What a backend sees of the run it works for."""

    @property
    def run_id(self) -> str: ...

    @property
    def workdir(self) -> Path:
        """A durable folder that belongs to this run (survives restarts)."""
        ...

    def get_handle(self, key: str) -> str | None:
        """An external handle recorded earlier for this run (e.g. ``vertex.training_pipeline``)."""
        ...

    def set_handle(self, key: str, value: str) -> None:
        """Record an external handle; durable when this returns."""
        ...

    def event(self, message: str, **data: object) -> None:
        """Append a timestamped event to the run's history (no secrets in message or data)."""
        ...

    def progress(self, done: int, total: int | None = None, *, what: str = "") -> None:
        """Report progress of the current stage (drives progress bars and the run store)."""
        ...

    def check_cancelled(self) -> None:
        """Raise ``RunCancelled`` if the run was cancelled; call it inside long loops."""
        ...

    def detach(self) -> RunContext:
        """A context for work that outlives the call that got this one (a training thread
        polled later): same run, stage and display; cancellation read from the run's record,
        not from the caller's lease."""
        ...


@runtime_checkable
class Source(Protocol):
    """Where a run's data rows come from (an export file, a Labelbox model run)."""

    @property
    def unassigned(self) -> str | None:
        """The split policy for rows without a split (``skip``, ``training``, ``validation``,
        ``test``, ``auto``: ``vmt.formats.export_options.split_for_unassigned``); None: the
        default the export calls for (``vmt.formats.split_policy.choose_unassigned``)."""
        ...

    def export(self, ctx: RunContext, dest: Path) -> None:
        """Write the run's data rows to ``dest`` as Labelbox export NDJSON (any form that
        ``vmt.formats.labelbox_export`` reads), in constant memory. Re-attach to an export
        started before a crash rather than starting another."""
        ...

    def locate_image(self, uri: str) -> str:
        """Where the image a row's ``row_data`` names really is (e.g. a relative path of an
        export file taken from its images folder); other locations unchanged."""
        ...


@runtime_checkable
class Trainer(Protocol):
    """A training backend, registered in ``vmt.trainers`` (``local``, ``vertex``...).

    Launch, then poll: ``train`` and ``predict`` never wait on a job. The first call launches
    it (idempotently: a job recorded as a handle, or found by the run's label, is re-attached,
    never started twice) and every call answers at once, ``Pending`` while the job runs, the
    result when it has finished. The runner calls again after ``Pending.seconds``; nothing
    sleeps on a job. ``tests/contract`` holds every registered trainer to this."""

    name: str

    def prepare(self, ctx: RunContext, samples: Iterable[Sample]) -> Iterator[Sample | Rejection]:
        """Make each sample usable by this trainer (stage or cache its image, fill missing
        dimensions from the image header) and yield it as it will be used, or a Rejection
        saying why it cannot be. May raise ``InputError`` once all are seen if the set breaks
        the trainer's limits (e.g. a class with too few training images)."""
        ...

    def train(self, ctx: RunContext, samples: Iterable[Sample]) -> Trained | Pending:
        """Launch training on the TRAINING (and VALIDATION, for early stopping) samples, or
        re-attach to the training started before (in this process or one that crashed), and
        answer at once. ``samples`` may be iterated more than once. Raises ``TrainingPlanned``
        when told to stop before launching (a dry run); a failed job raises a ``VmtError``
        whose message says what to do."""
        ...

    def predict(
        self, ctx: RunContext, model: str, samples: Iterable[Sample]
    ) -> Predicted | Pending:
        """Launch (or re-attach to) prediction of ``model`` on ``samples`` (the runner passes
        every VALIDATION and TEST row; a pool passes its rows) and answer at once. The result
        covers every sample given: a prediction or a rejection saying why not."""
        ...

    def cancel(self, ctx: RunContext) -> None:
        """Cancel any job of this run (no-op when there is none)."""
        ...


@runtime_checkable
class Sink(Protocol):
    """Where status and results go (an output folder, a Labelbox model run)."""

    def report_status(
        self,
        ctx: RunContext,
        status: RunStatus,
        *,
        metadata: Mapping[str, object],
        error: str | None = None,
    ) -> None:
        """Record a status transition. ``error`` (FAILED only) is <= 255 characters."""
        ...

    def publish(
        self,
        ctx: RunContext,
        *,
        predictions: Path,
        metrics: Path,
        row_metrics: Path | None,
        report: Path | None,
    ) -> None:
        """Deliver the results. ``predictions`` is Labelbox prediction NDJSON (with confidence),
        ``metrics`` is ``metrics.json`` from ``vmt evaluate``, ``row_metrics`` the per-row
        Labelbox custom-metric NDJSON. Idempotent: a retried publish uploads nothing twice."""
        ...


class Backends(Protocol):
    """The outside world of one run, built from its ``RunConfig`` by whoever runs the pipeline
    (the CLI, the service) and injected into the runner: the pipeline never builds it."""

    @property
    def source(self) -> Source: ...

    @property
    def trainer(self) -> Trainer: ...

    @property
    def sink(self) -> Sink: ...


__all__ = [
    "MODEL_HANDLE",
    "REPORT_HANDLE",
    "STAGE_STATUS",
    "Backends",
    "Pending",
    "Predicted",
    "Prediction",
    "Rejection",
    "RunContext",
    "RunStatus",
    "Sample",
    "Sink",
    "Source",
    "Stage",
    "Trained",
    "Trainer",
    "TrainingPlanned",
]
