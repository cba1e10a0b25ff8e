"""LocalTrainer.train / predict on a tiny synthetic dataset with seconds of training."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from tests.fakes.trainer_calls import predict_to_end, train_to_end
from tests.integration.local.context import RecordingContext, samples_from_export
from vmt.backends.local import LocalTrainer, TrainConfig, TrainProgress
from vmt.backends.local.checkpoint import LAST_CHECKPOINT, load_model
from vmt.config import Settings
from vmt.domain import Prediction, Sample, Split
from vmt.errors import RunCancelled
from vmt.synthetic import generate_dataset

TINY = TrainConfig(seed=5, epochs=2, batch_size=8, input_size=64, train_seconds=600, device="cpu")
"""Two epochs of two steps each on 16 training images: a second or two of training."""


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    export = generate_dataset(tmp_path_factory.mktemp("tiny"), images=20, seed=11)
    return samples_from_export(export)


def _train(ctx: RecordingContext, samples: list[Sample], config: TrainConfig = TINY) -> str:
    return train_to_end(LocalTrainer(Settings(), config=config), ctx, samples).model


def _weights(model_path: str | Path) -> dict[str, torch.Tensor]:
    model, _ = load_model(Path(model_path), torch.device("cpu"))
    return model.state_dict()


def test_train_then_predict_every_given_row(tmp_path: Path, samples: list[Sample]) -> None:
    ctx = RecordingContext(tmp_path / "run")
    updates: list[TrainProgress] = []
    trainer = LocalTrainer(Settings(), config=TINY, on_progress=updates.append)
    model = train_to_end(trainer, ctx, samples).model
    assert Path(model).is_file() and ctx.handles["local.model"] == model
    assert (ctx.workdir / "local" / LAST_CHECKPOINT).is_file()
    epochs = ctx.named("local training epoch")
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert ctx.named("local training finished")[0]["stopped"] == "planned epochs"
    assert updates and updates[-1].epoch == 2 and updates[-1].eta_seconds == 0.0
    assert ctx.progress_calls  # the run store hears about progress too

    rows = [s for s in samples if s.split in {Split.VALIDATION, Split.TEST}]
    rows.append(Sample("no-boxes", rows[0].image_uri, rows[0].width, rows[0].height, Split.TEST))
    predictions = predict_to_end(trainer, ctx, model, rows)
    assert [p.data_row_id for p in predictions] == [s.data_row_id for s in rows]
    assert all(isinstance(p, Prediction) for p in predictions)
    for sample, prediction in zip(rows, predictions, strict=True):
        assert len(prediction.detections) <= 100
        for detection in prediction.detections:
            box = detection.box
            assert 0 <= box.x0 < box.x1 <= sample.width
            assert 0 <= box.y0 < box.y1 <= sample.height
            assert 0.05 <= detection.score <= 1.0


def test_the_seed_decides_the_weights(tmp_path: Path, samples: list[Sample]) -> None:
    # (same seed -> identical weights is shown by the crash test: resumed == uninterrupted)
    one_epoch = dataclasses.replace(TINY, epochs=1)
    first = _weights(_train(RecordingContext(tmp_path / "a"), samples, one_epoch))
    other = dataclasses.replace(one_epoch, seed=6)
    second = _weights(_train(RecordingContext(tmp_path / "b"), samples, other))
    assert any(not torch.equal(tensor, second[name]) for name, tensor in first.items())


def test_a_crash_mid_training_resumes_from_the_last_checkpoint(
    tmp_path: Path, samples: list[Sample]
) -> None:
    steps_per_epoch = sum(s.split is Split.TRAINING for s in samples) // TINY.batch_size
    crashed = RecordingContext(tmp_path / "run", cancel_after_checks=steps_per_epoch + 1)
    with pytest.raises(RunCancelled):
        _train(crashed, samples)  # dies at the start of epoch 2, after epoch 1's checkpoint
    assert [e["epoch"] for e in crashed.named("local training epoch")] == [1]

    resumed = RecordingContext(tmp_path / "run")
    model = _train(resumed, samples)
    assert resumed.named("local training resumed") == [{"after_epoch": 1}]
    assert [e["epoch"] for e in resumed.named("local training epoch")] == [2]

    # continuing from the checkpoint (weights, optimiser, RNG) gives exactly what an
    # uninterrupted run with the same seed gives
    straight = _weights(_train(RecordingContext(tmp_path / "straight"), samples))
    for name, tensor in _weights(model).items():
        torch.testing.assert_close(tensor, straight[name], rtol=0, atol=0)

    # a finished run is not trained again
    again = RecordingContext(tmp_path / "run")
    assert _train(again, samples) == model
    assert again.named("local training epoch") == []


def test_the_time_budget_stops_training(tmp_path: Path, samples: list[Sample]) -> None:
    config = dataclasses.replace(TINY, epochs=50, train_seconds=0.01)
    ctx = RecordingContext(tmp_path / "run")
    model = _train(ctx, samples, config)
    assert Path(model).is_file()
    finished = ctx.named("local training finished")[0]
    assert finished["stopped"] == "time budget" and finished["epochs"] == 1


def test_training_without_any_box_is_an_input_error(tmp_path: Path, samples: list[Sample]) -> None:
    from vmt.errors import InputError

    bare = [Sample(s.data_row_id, s.image_uri, s.width, s.height, s.split) for s in samples]
    with pytest.raises(InputError, match="no training sample has a box"):
        _train(RecordingContext(tmp_path / "run"), bare)
