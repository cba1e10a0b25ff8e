"""Calling a ``Trainer`` to the end in a test: launch, then poll every few milliseconds
whatever the trainer asks (a fake cloud job advances per poll, not per second). The test's
context hears no extra ``check_cancelled`` calls from the polling itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from vmt.domain import Prediction, Rejection, Sample
from vmt.pipeline.protocols import Pending, RunContext, Trained, Trainer

T = TypeVar("T")


def until_done(call: Callable[[], T | Pending]) -> T:
    while isinstance(answer := call(), Pending):
        time.sleep(min(answer.seconds, 0.02))
    return answer


def train_to_end(trainer: Trainer, ctx: RunContext, samples: Iterable[Sample]) -> Trained:
    """``trainer.train`` polled until it answers a result."""
    return until_done(lambda: trainer.train(ctx, samples))


def predict_to_end(
    trainer: Trainer, ctx: RunContext, model: str, samples: Iterable[Sample]
) -> list[Prediction | Rejection]:
    """``trainer.predict`` polled until it answers; every row it gave, read."""
    return list(until_done(lambda: trainer.predict(ctx, model, samples)).rows)


def predictions_of(rows: Iterable[Prediction | Rejection]) -> list[Prediction]:
    return [row for row in rows if isinstance(row, Prediction)]
