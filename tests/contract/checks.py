"""The trainer contract (``vmt.pipeline.protocols.Trainer``) as checks on a harness.

Each check raises ``AssertionError`` when the trainer breaks the rule; the suite runs every
check on every registered trainer, and on a deliberately defective one to show it fails."""

from __future__ import annotations

import pytest

from tests.contract.harnesses import Harness
from tests.fakes.trainer_calls import predict_to_end, train_to_end
from vmt.domain import Prediction, Rejection, Split
from vmt.errors import VmtError
from vmt.pipeline.failure import MAX_MESSAGE, failure_message
from vmt.pipeline.protocols import Pending, Stage


def check_launching_twice_creates_one_job(harness: Harness) -> None:
    samples = harness.samples()
    ctx = harness.context()
    first = harness.trainer().train(ctx, samples)
    again = harness.trainer().train(harness.context(), samples)
    assert isinstance(first, Pending), "train must answer at once while its job runs"
    assert isinstance(again, Pending)
    assert harness.jobs_launched() == 1, f"{harness.jobs_launched()} jobs for one run"
    train_to_end(harness.trainer(), harness.context(), samples)
    assert harness.jobs_launched() == 1, f"{harness.jobs_launched()} jobs for one run"


def check_a_new_process_reattaches(harness: Harness) -> None:
    samples = harness.samples()
    launched = harness.trainer().train(harness.context(), samples)
    assert isinstance(launched, Pending)
    # the process that launched it is gone; a new one (new trainer, new context) takes over
    trained = train_to_end(harness.trainer(), harness.context(), samples)
    assert trained.model
    assert harness.jobs_launched() == 1, "the new process launched a second job"


def check_cancel_with_nothing_running_is_a_no_op(harness: Harness) -> None:
    ctx = harness.context()
    harness.trainer().cancel(ctx)
    harness.trainer().cancel(ctx)
    assert harness.jobs_launched() == 0


def check_predict_covers_every_sample(harness: Harness) -> None:
    samples = harness.samples()
    model = train_to_end(harness.trainer(), harness.context(), samples).model
    wanted = [s for s in samples if s.split in (Split.VALIDATION, Split.TEST)]
    rows = predict_to_end(harness.trainer(), harness.context(), model, wanted)
    answered = [row.data_row_id for row in rows if isinstance(row, Prediction | Rejection)]
    assert sorted(answered) == sorted(s.data_row_id for s in wanted), "rows lost or doubled"


def check_a_failure_says_what_to_do(harness: Harness) -> None:
    harness.break_training()
    samples = harness.samples()
    with pytest.raises(VmtError) as raised:
        train_to_end(harness.trainer(), harness.context(), samples)
    message = failure_message(Stage.TRAIN, raised.value, run_id="run-contract")
    assert len(message) <= MAX_MESSAGE
    assert message.startswith("Training failed: ")
    assert "vmt resume" in message or "start a new run" in message


CHECKS = (
    check_launching_twice_creates_one_job,
    check_a_new_process_reattaches,
    check_cancel_with_nothing_running_is_a_no_op,
    check_predict_covers_every_sample,
    check_a_failure_says_what_to_do,
)
