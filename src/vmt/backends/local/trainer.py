"""`LocalTrainer`: the pure-PyTorch detector behind the pipeline's `Trainer` Protocol.

Everything lives under the run's folder (``ctx.workdir``): ``images/`` (downloaded images),
``local/last.pt`` (training state, rewritten every epoch) and ``local/model.pt`` (the best model).
PyTorch is imported inside the methods that need it, so building a trainer stays cheap.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from vmt.backends.image_source import FetchPolicy, ImageFetcher
from vmt.backends.local.background import launch_or_poll
from vmt.backends.local.images import ImageResolver
from vmt.backends.local.training_config import TrainConfig, TrainProgress
from vmt.backends.outbound import rules_for
from vmt.config import Settings
from vmt.domain import Prediction, Rejection, Sample, Split
from vmt.formats.outbound_policy import OutboundRules
from vmt.human_numbers import format_duration, format_number
from vmt.pipeline.protocols import Pending, Predicted, RunContext, Trained

MODEL_HANDLE = "local.model"
PROGRESS_INTERVAL = 1.0
"""Seconds between progress reports to the run context (each may write to the run store)."""


def passive_openmp_threads() -> None:
    """Make OpenMP threads sleep rather than spin while waiting, if torch is not loaded yet.

    With the default (spinning) policy, a 2-thread torch on a machine whose cores are busy with
    other work spends most of its CPU spinning: measured on the 2-core dev machine under load,
    one training step took 4-6 s instead of 0.3 s. On idle cores the difference is small.
    An explicit ``OMP_WAIT_POLICY`` in the environment wins.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def training_progress_text(update: TrainProgress) -> str:
    """``epoch 2/5 · loss 1.234 · val AP50 0.6121 · 1 min 3 s left``: the progress line."""
    ap50 = "–" if update.val_ap50 is None else format_number(update.val_ap50)
    return (
        f"epoch {update.epoch}/{update.epochs} · loss {format_number(update.loss)} · "
        f"val AP50 {ap50} · {format_duration(update.eta_seconds)} left"
    )


class LocalTrainer:
    name = "local"

    def __init__(
        self,
        settings: Settings,
        *,
        config: TrainConfig | None = None,
        on_progress: Callable[[TrainProgress], None] | None = None,
        fetch_policy: FetchPolicy | None = None,
        fetcher: ImageFetcher | None = None,
        outbound: OutboundRules | None = None,
    ) -> None:
        """``on_progress(TrainProgress)`` is called after every training step (a CLI progress
        bar); ``config`` overrides what ``settings`` give (seed, train_seconds); ``outbound``:
        what image locations may reach, default the service's (``outbound.rules_for``)."""
        self._config = config or TrainConfig(
            seed=settings.seed,
            train_seconds=settings.train_seconds,
            epochs=settings.local_epochs,
            device=settings.local_device,
        )
        self._on_progress = on_progress
        self._fetch_policy = fetch_policy
        self._fetcher = fetcher
        self._outbound = outbound or rules_for(settings)

    @property
    def config(self) -> TrainConfig:
        return self._config

    def prepare(self, ctx: RunContext, samples: Iterable[Sample]) -> Iterator[Sample | Rejection]:
        resolver = ImageResolver(
            ctx.workdir / "images",
            policy=self._fetch_policy,
            fetcher=self._fetcher,
            rules=self._outbound,
        )
        done = 0
        last_report = time.monotonic()
        for item in resolver.resolve_all(samples):
            done += 1
            if time.monotonic() - last_report >= PROGRESS_INTERVAL:
                ctx.check_cancelled()
                ctx.progress(done, None, what="images")
                last_report = time.monotonic()
            yield item
        ctx.progress(done, done, what="images")

    def train(self, ctx: RunContext, samples: Iterable[Sample]) -> Trained | Pending:
        """Launch the training on a thread of this process (``background``), or poll it."""
        return launch_or_poll(
            ctx, ctx.workdir / "local", lambda detached: self._fit(detached, samples)
        )

    def _fit(self, ctx: RunContext, samples: Iterable[Sample]) -> Trained:
        passive_openmp_threads()
        from vmt.backends.local.train_loop import fit

        rows = list(samples)
        train = [s for s in rows if s.split is Split.TRAINING]
        validation = [s for s in rows if s.split is Split.VALIDATION]
        last_report = [0.0]

        def progress(update: TrainProgress) -> None:
            if self._on_progress is not None:
                self._on_progress(update)
            now = time.monotonic()
            if now - last_report[0] >= PROGRESS_INTERVAL:
                last_report[0] = now
                ctx.progress(
                    (update.epoch - 1) * update.steps + update.step,
                    update.epochs * update.steps,
                    what=training_progress_text(update),
                )

        def event(message: str, data: dict[str, Any]) -> None:
            ctx.event(message, **data)

        ctx.event(
            "local training",
            training_images=len(train),
            validation_images=len(validation),
            train_seconds=self._config.train_seconds,
            seed=self._config.seed,
        )
        result = fit(
            train,
            validation,
            run_dir=ctx.workdir / "local",
            config=self._config,
            on_progress=progress,
            check_cancelled=ctx.check_cancelled,
            on_event=event,
        )
        ctx.event(
            "local training finished",
            epochs=result.epochs_done,
            best_epoch=result.best_epoch,
            best_val_ap50=result.best_ap50,
            stopped=result.stopped,
        )
        model = str(result.model_path)
        ctx.set_handle(MODEL_HANDLE, model)
        return Trained(
            model=model,
            summary={
                "epochs": result.epochs_done,
                "best_epoch": result.best_epoch,
                "best_val_ap50": result.best_ap50,
                "stopped": result.stopped,
            },
        )

    def predict(
        self, ctx: RunContext, model: str, samples: Iterable[Sample]
    ) -> Predicted | Pending:
        """Predicts in this process as the rows are read (no job to wait on)."""
        return Predicted(self._predict(ctx, model, samples))

    def _predict(
        self, ctx: RunContext, model: str, samples: Iterable[Sample]
    ) -> Iterator[Prediction]:
        passive_openmp_threads()
        import torch

        from vmt.backends.local.checkpoint import load_model
        from vmt.backends.local.predict import predict_samples
        from vmt.backends.local.train_loop import pick_device, use_all_cores

        use_all_cores()
        detector, classes = load_model(Path(model), pick_device(self._config.device))
        done = 0
        with torch.inference_mode():
            for prediction in predict_samples(detector, classes, samples):
                done += 1
                if done % 64 == 0:
                    ctx.check_cancelled()
                    ctx.progress(done, None, what="images")
                yield prediction

    def predict_and_embed(
        self, ctx: RunContext, model: str, samples: Iterable[Sample]
    ) -> Iterator[tuple[Prediction, Any]]:
        """Like ``predict``, with each image's backbone embedding (``(D,)`` float32) beside its
        prediction: ``diverse`` selection spreads its picks over them."""
        passive_openmp_threads()
        import torch

        from vmt.backends.local.checkpoint import load_model
        from vmt.backends.local.embed import predict_and_embed
        from vmt.backends.local.train_loop import pick_device, use_all_cores

        use_all_cores()
        detector, classes = load_model(Path(model), pick_device(self._config.device))
        done = 0
        with torch.inference_mode():
            for item in predict_and_embed(detector, classes, samples):
                done += 1
                if done % 64 == 0:
                    ctx.check_cancelled()
                    ctx.progress(done, None, what="images")
                yield item

    def cancel(self, ctx: RunContext) -> None:
        """Nothing runs outside this process: a training thread stops at its next
        ``check_cancelled`` (it reads the run's cancel request)."""
