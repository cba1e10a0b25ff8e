"""What a local training run is told and what it reports; torch-free so the CLI and the
pipeline can import these without loading PyTorch."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TRAIN_SECONDS = 270.0
"""Training budget `vmt demo` uses by default (the synthetic demo reaches its target in it)."""


@dataclass(frozen=True, slots=True)
class TrainConfig:
    seed: int = 0
    train_seconds: float = DEFAULT_TRAIN_SECONDS
    epochs: int | None = None
    """Fixed number of epochs; None plans them from the measured speed and ``train_seconds``."""
    max_epochs: int = 80
    batch_size: int = 16
    learning_rate: float = 6e-3
    weight_decay: float = 1e-4
    patience: int = 10
    """Stop after this many epochs without validation AP50 reaching its best again."""
    input_size: int = 128
    """Side of the square (letterboxed) network input; a multiple of 32."""
    device: str | None = None
    """``cpu`` or ``cuda``; None picks CUDA when present."""


@dataclass(frozen=True, slots=True)
class TrainProgress:
    epoch: int
    """1-based epoch being trained."""
    epochs: int
    """Planned epochs (may change while the plan adapts to the measured speed)."""
    step: int
    steps: int
    """Steps in one epoch."""
    loss: float
    elapsed: float
    budget: float
    val_ap50: float | None
    best_ap50: float | None

    @property
    def eta_seconds(self) -> float:
        done = (self.epoch - 1) * self.steps + self.step
        total = self.epochs * self.steps
        left = max(self.budget - self.elapsed, 0.0)
        if done <= 0:
            return left
        return max(min(self.elapsed / done * max(total - done, 0), left), 0.0)
