"""A fake Source, Trainer and Sink (our own Protocols) and a runner wired to them.

The source writes a small Labelbox model-run export; the trainer "trains" by recording an
external job handle and waiting in a loop that honours cancellation; its predictions are the
ground truth with a score, so evaluation has something real to measure.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from vmt.backends.factory import Backends
from vmt.config import Settings
from vmt.domain import Detection, Prediction, Rejection, Sample
from vmt.formats.image_uri import resolve_relative
from vmt.pipeline.context import RunObserver
from vmt.pipeline.protocols import Pending, Predicted, RunContext, RunStatus, Trained, Trainer
from vmt.pipeline.run_config import BackendSpec, RunConfig
from vmt.pipeline.runner import Runner
from vmt.pipeline.store import RunStore
from vmt.retry import Backoff

MODEL_RUN = "mr-1"


def export_row(
    index: int, split: str, *, image: str | None = None, boxes: int = 1
) -> dict[str, Any]:
    objects = [
        {
            "name": "square" if k % 2 == 0 else "circle",
            "annotation_kind": "ImageBoundingBox",
            "bounding_box": {"top": 10.0 + k, "left": 5.0 + k, "height": 20.0, "width": 30.0},
        }
        for k in range(boxes)
    ]
    return {
        "data_row": {
            "id": f"row-{index}",
            "global_key": f"img-{index}.png",
            "row_data": image or f"/images/img-{index}.png",
        },
        "media_attributes": {"height": 100, "width": 120, "mime_type": "image/png"},
        "experiments": {
            "model-1": {
                "name": "m",
                "runs": {
                    MODEL_RUN: {
                        "name": "r",
                        "split": split,
                        "labels": [{"annotations": {"objects": objects}}],
                    }
                },
            }
        },
    }


def export_lines(n_train: int = 6, n_val: int = 2, n_test: int = 2) -> list[bytes]:
    splits = ["training"] * n_train + ["validation"] * n_val + ["test"] * n_test
    return [orjson.dumps(export_row(i, split)) for i, split in enumerate(splits)]


@dataclass
class Calls:
    """What the fakes were asked to do, across every runner sharing them."""

    log: list[str] = field(default_factory=list)
    jobs_created: int = 0
    train_failures: list[BaseException] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    statuses: list[tuple[RunStatus, dict[str, object], str | None]] = field(default_factory=list)
    published: list[dict[str, Path | None]] = field(default_factory=list)
    release_training: threading.Event = field(default_factory=threading.Event)
    training_started: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, what: str) -> None:
        with self.lock:
            self.log.append(what)


class FakeSource:
    unassigned = "skip"

    def __init__(self, calls: Calls, lines: list[bytes], image_base: Path | None = None) -> None:
        self.calls = calls
        self.lines = lines
        self.image_base = image_base

    def locate_image(self, uri: str) -> str:
        return resolve_relative(uri, self.image_base)

    def export(self, ctx: RunContext, dest: Path) -> None:
        self.calls.record("export")
        dest.write_bytes(b"".join(line + b"\n" for line in self.lines))


class FakeTrainer:
    name = "fake"

    def __init__(self, calls: Calls, *, wait_for_release: bool = False) -> None:
        self.calls = calls
        self.wait_for_release = wait_for_release

    def prepare(self, ctx: RunContext, samples: Iterable[Sample]) -> Iterator[Sample | Rejection]:
        self.calls.record("prepare")
        for sample in samples:
            if "missing" in sample.image_uri:
                yield Rejection("image_missing", sample.line, sample.data_row_id, "no such file")
            else:
                yield sample

    def train(self, ctx: RunContext, samples: Iterable[Sample]) -> Trained | Pending:
        job = ctx.get_handle("fake.job")
        if job is None:
            self.calls.record("train")
            with self.calls.lock:
                self.calls.jobs_created += 1
                job = f"job-{self.calls.jobs_created}"
            ctx.set_handle("fake.job", job)
        elif not self.calls.training_started.is_set() or not self.wait_for_release:
            self.calls.record("train")
        if self.calls.train_failures:  # fails while "waiting" on the job
            raise self.calls.train_failures.pop(0)
        self.calls.training_started.set()
        if self.wait_for_release and not self.calls.release_training.is_set():
            return Pending(0.01, "the fake job")
        assert sum(1 for _ in samples) == sum(1 for _ in samples)  # re-iterable
        return Trained(model=f"model-of-{job}")

    def predict(
        self, ctx: RunContext, model: str, samples: Iterable[Sample]
    ) -> Predicted | Pending:
        self.calls.record("predict")
        return Predicted(
            Prediction(sample.data_row_id, tuple(Detection(b, 0.9) for b in sample.boxes))
            for sample in samples
        )

    def cancel(self, ctx: RunContext) -> None:
        self.calls.cancelled.append(ctx.run_id)


class FakeSink:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def report_status(
        self,
        ctx: RunContext,
        status: RunStatus,
        *,
        metadata: Mapping[str, object],
        error: str | None = None,
    ) -> None:
        self.calls.statuses.append((status, dict(metadata), error))

    def publish(
        self,
        ctx: RunContext,
        *,
        predictions: Path,
        metrics: Path,
        row_metrics: Path | None,
        report: Path | None,
    ) -> None:
        self.calls.record("publish")
        self.calls.published.append(
            {
                "predictions": predictions,
                "metrics": metrics,
                "row_metrics": row_metrics,
                "report": report,
            }
        )


FAKE_CONFIG = RunConfig(
    source=BackendSpec(kind="fake"),
    trainer=BackendSpec(kind="fake"),
    sink=BackendSpec(kind="fake"),
    label="fake export",
)


def make_runner(
    store: RunStore,
    calls: Calls,
    *,
    lines: list[bytes] | None = None,
    wait_for_release: bool = False,
    observer: RunObserver | None = None,
    lease_seconds: float = 30.0,
    image_base: Path | None = None,
    trainer: Trainer | None = None,
) -> Runner:
    """A runner over the fakes; ``trainer`` replaces the ``FakeTrainer``."""
    export = export_lines() if lines is None else lines

    def factory(config: RunConfig, settings: Settings) -> Backends:
        return Backends(
            source=FakeSource(calls, export, image_base),
            trainer=trainer or FakeTrainer(calls, wait_for_release=wait_for_release),
            sink=FakeSink(calls),
        )

    return Runner(
        Settings(state_dir=store.db_path.parent),
        store=store,
        backends_factory=factory,
        observer=observer,
        backoff=Backoff(base=0.001, cap=0.001, deadline=5.0, max_attempts=4, sleep=lambda s: None),
        lease_seconds=lease_seconds,
        heartbeat_seconds=0.02,
    )
