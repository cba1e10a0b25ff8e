import pytest

from vmt.backends.local import DEFAULT_TRAIN_SECONDS, TrainProgress
from vmt.config import Settings


def test_the_settings_default_budget_is_the_trainers() -> None:
    assert Settings().train_seconds == DEFAULT_TRAIN_SECONDS


def _progress(epoch: int, step: int, elapsed: float, *, epochs: int = 10) -> TrainProgress:
    return TrainProgress(
        epoch=epoch,
        epochs=epochs,
        step=step,
        steps=10,
        loss=1.0,
        elapsed=elapsed,
        budget=100.0,
        val_ap50=None,
        best_ap50=None,
    )


@pytest.mark.parametrize(
    ("progress", "eta"),
    [
        (_progress(1, 0, 0.0), 100.0),  # nothing done yet: the whole budget
        (_progress(3, 5, 25.0), 75.0),  # 25 of 100 steps in 25 s: 75 s to go
        (_progress(2, 0, 50.0, epochs=100), 50.0),  # the plan would overrun: the budget left
        (_progress(10, 10, 80.0), 0.0),  # done
    ],
)
def test_eta(progress: TrainProgress, eta: float) -> None:
    assert progress.eta_seconds == pytest.approx(eta)
