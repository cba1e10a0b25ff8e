"""Every registered trainer passes the same contract; a defective trainer does not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.contract.checks import CHECKS, check_launching_twice_creates_one_job
from tests.contract.harnesses import HARNESSES, Harness, scripted_harness
from vmt.backends.scripted import ScriptedTrainer, TrainerScript
from vmt.pipeline.protocols import Pending, RunContext, Trained


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("trainer", sorted(HARNESSES))
def test_the_contract(trainer: str, check: Callable[[Harness], None], tmp_path: Path) -> None:
    with HARNESSES[trainer](tmp_path) as harness:
        check(harness)


def test_every_registered_trainer_has_a_harness() -> None:
    from vmt.backends.registry import trainer_names

    assert set(trainer_names()) <= set(HARNESSES)


class _ForgetfulTrainer(ScriptedTrainer):
    """A defect: launches a new job on every call (never looks at its handle)."""

    def train(self, ctx: RunContext, samples: object) -> Trained | Pending:
        for key in ("scripted.training_job",):
            ctx.set_handle(key, "forgotten")
        return super().train(ctx, samples)  # type: ignore[arg-type]


def test_the_contract_fails_a_trainer_whose_launch_is_not_idempotent(tmp_path: Path) -> None:
    script = TrainerScript(train_polls=3)
    with scripted_harness(tmp_path) as harness:
        harness.trainer = lambda: _ForgetfulTrainer(script=script)  # type: ignore[method-assign]
        harness.jobs_launched = lambda: sum(  # type: ignore[method-assign]
            1 for job in script.launched if job.startswith("training")
        )
        with pytest.raises(AssertionError, match="jobs for one run"):
            check_launching_twice_creates_one_job(harness)
