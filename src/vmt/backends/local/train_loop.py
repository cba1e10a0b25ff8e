"""The training loop: seeded, checkpointed every epoch, resumable, early-stopped on validation
AP50 and bounded by a time budget.

Epoch plan: with ``epochs`` given, the run is exactly that many epochs and bit-for-bit
reproducible for a seed (on one device and thread count). Without it, the plan is made from the
measured speed so that training fills ``train_seconds`` (re-planned after every epoch, recorded
in the checkpoint); the budget is a hard stop either way. The learning rate warms up over the
first epoch, then follows a cosine down to 2% over the plan.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vmt.backends.local.augment import augment_batch
from vmt.backends.local.checkpoint import (
    LAST_CHECKPOINT,
    MODEL_FILE,
    load_checkpoint,
    model_payload,
    save_atomic,
)
from vmt.backends.local.data import LetterboxedImages, class_names, load_letterboxed
from vmt.backends.local.losses import BOX_LOSS_WEIGHT, detection_loss
from vmt.backends.local.model import Detector, DetectorConfig, place
from vmt.backends.local.predict import detect
from vmt.backends.local.targets import encode
from vmt.backends.local.training_config import TrainConfig, TrainProgress
from vmt.backends.local.validation_ap import average_precision_50
from vmt.domain import Sample
from vmt.errors import InputError

log = logging.getLogger("vmt")


@dataclass(frozen=True, slots=True)
class FitResult:
    model_path: Path
    epochs_done: int
    best_epoch: int
    best_ap50: float | None
    stopped: str
    """Why training ended: ``planned epochs``, ``time budget``, ``early stopping``."""
    history: list[dict[str, float]] = field(default_factory=list)


ProgressCallback = Callable[[TrainProgress], None]
EventCallback = Callable[[str, dict[str, Any]], None]


def pick_device(name: str | None) -> torch.device:
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def use_all_cores() -> None:
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))


def learning_rate(step: int, *, total_steps: int, warmup_steps: int, peak: float) -> float:
    if step < warmup_steps:
        return peak * (0.1 + 0.9 * step / max(warmup_steps, 1))
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


def fit(
    train: Sequence[Sample],
    validation: Sequence[Sample],
    *,
    run_dir: Path,
    config: TrainConfig,
    on_progress: ProgressCallback | None = None,
    check_cancelled: Callable[[], None] | None = None,
    on_event: EventCallback | None = None,
) -> FitResult:
    """Train (or continue training) a detector under ``run_dir``; return the best model.

    ``on_event(message, data)`` hears ``local training resumed`` (with the epoch it continues
    after) and ``local training epoch`` (loss, validation AP50, elapsed seconds) once per epoch.
    """
    started = time.monotonic()
    classes = class_names(train)
    if not classes:
        raise InputError("no training sample has a box: nothing to train the local detector on")
    class_index = {name: i for i, name in enumerate(classes)}
    net_config = DetectorConfig(num_classes=len(classes), input_size=config.input_size)
    last_path, model_path = run_dir / LAST_CHECKPOINT, run_dir / MODEL_FILE
    state = load_checkpoint(last_path)
    if state is not None and (state["classes"] != classes or state["net"] != net_config.to_dict()):
        log.warning("local trainer: checkpoint %s is for another dataset; starting over", last_path)
        state = None
    if state is not None and state["finished"]:
        return _result(state, model_path)

    device = pick_device(config.device)
    use_all_cores()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = Detector(net_config)
    place(model, device).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["rng"])
        log.info("local trainer: resuming after epoch %d", state["epoch"])
        if on_event is not None:
            on_event("local training resumed", {"after_epoch": int(state["epoch"])})
    else:
        state = {
            "classes": classes,
            "net": net_config.to_dict(),
            "train_config": asdict(config),
            "epoch": 0,
            "planned_epochs": config.epochs or config.max_epochs,
            "elapsed": 0.0,
            "best_ap50": None,
            "best_epoch": 0,
            "since_best": 0,
            "finished": False,
            "stopped": "",
            "history": [],
        }

    train_set = load_letterboxed(train, side=config.input_size, class_index=class_index)
    val_set = load_letterboxed(validation, side=config.input_size, class_index=class_index)
    batch_size = min(config.batch_size, len(train_set))
    steps = max(len(train_set) // batch_size, 1)
    warmup = steps
    elapsed_before = float(state["elapsed"])

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - started

    while not state["finished"]:
        epoch = int(state["epoch"]) + 1
        order = torch.randperm(len(train_set), generator=generator)
        losses: list[float] = []
        out_of_time = False
        for step in range(steps):
            if check_cancelled is not None:
                check_cancelled()
            index = order[step * batch_size : (step + 1) * batch_size]
            global_step = (epoch - 1) * steps + step
            lr = learning_rate(
                global_step,
                total_steps=int(state["planned_epochs"]) * steps,
                warmup_steps=warmup,
                peak=config.learning_rate,
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = _train_step(model, optimizer, train_set, index, generator, device)
            losses.append(loss)
            if on_progress is not None:
                on_progress(
                    TrainProgress(
                        epoch=epoch,
                        epochs=int(state["planned_epochs"]),
                        step=step + 1,
                        steps=steps,
                        loss=float(np.mean(losses[-20:])),
                        elapsed=elapsed(),
                        budget=config.train_seconds,
                        val_ap50=state["history"][-1]["val_ap50"] if state["history"] else None,
                        best_ap50=state["best_ap50"],
                    )
                )
            if elapsed() >= config.train_seconds:
                out_of_time = True
                break
        val_ap50 = _validate(model, val_set) if len(val_set) else None
        _end_epoch(state, model, optimizer, generator, epoch, losses, val_ap50, elapsed())
        improved = state["best_epoch"] == epoch
        if improved:
            save_atomic(model_payload(model, classes), model_path)
        _plan(state, config, out_of_time)
        save_atomic(state, last_path)
        record = state["history"][-1]
        log.info(
            "local trainer: epoch %d/%d loss %.4f val AP50 %s (%.0fs)",
            epoch,
            state["planned_epochs"],
            record["loss"],
            "-" if val_ap50 is None else f"{val_ap50:.3f}",
            record["elapsed"],
        )
        if on_event is not None:
            on_event("local training epoch", {**record, "planned_epochs": state["planned_epochs"]})
    return _result(state, model_path)


def _train_step(
    model: Detector,
    optimizer: torch.optim.Optimizer,
    data: LetterboxedImages,
    index: torch.Tensor,
    generator: torch.Generator,
    device: torch.device,
) -> float:
    ids = index.tolist()
    images, boxes, labels = augment_batch(
        data.images[index],
        [data.boxes[i] for i in ids],
        [data.labels[i] for i in ids],
        generator=generator,
    )
    cfg = model.config
    targets = encode(
        boxes,
        labels,
        num_classes=cfg.num_classes,
        grid=cfg.input_size // cfg.stride,
        stride=cfg.stride,
    )
    heatmap, distances = model(images.to(device, memory_format=torch.channels_last))
    heat_loss, box_loss = detection_loss(
        heatmap,
        distances,
        type(targets)(
            targets.heatmap.to(device), targets.boxes.to(device), targets.weights.to(device)
        ),
        stride=cfg.stride,
    )
    loss = heat_loss + BOX_LOSS_WEIGHT * box_loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    optimizer.step()
    return float(loss.detach())


def _validate(model: Detector, data: LetterboxedImages, batch_size: int = 32) -> float:
    found = []
    for start in range(0, len(data), batch_size):
        found += detect(model, data.images[start : start + batch_size])
    truths = [(b.numpy(), lab.numpy()) for b, lab in zip(data.boxes, data.labels, strict=True)]
    detections = [(d.boxes.numpy(), d.scores.numpy(), d.labels.numpy()) for d in found]
    return average_precision_50(truths, detections, model.config.num_classes)


def _end_epoch(
    state: dict[str, Any],
    model: Detector,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    epoch: int,
    losses: list[float],
    val_ap50: float | None,
    elapsed: float,
) -> None:
    best = state["best_ap50"]
    # ties count as improvements: a later epoch at the same AP has seen more (lower-lr) training
    if val_ap50 is None or best is None or val_ap50 >= best:
        state["best_ap50"], state["best_epoch"], state["since_best"] = val_ap50, epoch, 0
    else:
        state["since_best"] += 1
    state["epoch"] = epoch
    state["elapsed"] = elapsed
    state["history"].append(
        {
            "epoch": epoch,
            "loss": float(np.mean(losses)) if losses else float("nan"),
            "val_ap50": val_ap50,
            "elapsed": elapsed,
        }
    )
    state["model"] = model.state_dict()
    state["optimizer"] = optimizer.state_dict()
    state["rng"] = generator.get_state()


def _plan(state: dict[str, Any], config: TrainConfig, out_of_time: bool) -> None:
    """Decide whether training is finished and, without fixed epochs, re-plan the epoch count."""
    epoch = int(state["epoch"])
    if config.epochs is None:
        per_epoch = float(state["elapsed"]) / epoch
        remaining = config.train_seconds - float(state["elapsed"])
        fits = epoch + max(int(remaining / per_epoch), 0)
        state["planned_epochs"] = max(min(fits, config.max_epochs), epoch)
    if out_of_time or float(state["elapsed"]) >= config.train_seconds:
        state["finished"], state["stopped"] = True, "time budget"
    elif epoch >= int(state["planned_epochs"]):
        state["finished"], state["stopped"] = True, "planned epochs"
    elif state["since_best"] >= config.patience:
        state["finished"], state["stopped"] = True, "early stopping"


def _result(state: dict[str, Any], model_path: Path) -> FitResult:
    return FitResult(
        model_path=model_path,
        epochs_done=int(state["epoch"]),
        best_epoch=int(state["best_epoch"]),
        best_ap50=state["best_ap50"],
        stopped=str(state["stopped"]),
        history=list(state["history"]),
    )
