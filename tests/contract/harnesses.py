"""One harness per registered trainer: how to build it (as a new process would), the rows it
trains on, how many jobs it has launched, and how to make its training fail.

A trainer registered without a harness here fails the contract suite (``test_every_registered
trainer_has_a_harness``): the contract is every trainer's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tests.fakes.gcp import local_gcp
from tests.fakes.simple_run_context import SimpleRunContext
from tests.fakes.vertex_samples import make_samples
from vmt.domain import Sample
from vmt.formats.outbound_policy import OutboundRules
from vmt.pipeline.protocols import Trainer


class Harness(Protocol):
    name: str

    def trainer(self) -> Trainer:
        """A new trainer, as a new process would build it."""
        ...

    def context(self) -> SimpleRunContext:
        """A context over the run's folder (a new instance each call: another process)."""
        ...

    def samples(self) -> list[Sample]:
        """The run's rows, prepared by the trainer."""
        ...

    def jobs_launched(self) -> int:
        """Training jobs started so far, wherever they run."""
        ...

    def break_training(self) -> None:
        """Make the next training fail the way this trainer's trainings fail."""
        ...


@dataclass
class BaseHarness:
    name: str
    root: Path
    build: Callable[[], Trainer]
    run_id: str = "run-contract"
    contexts: list[SimpleRunContext] = field(default_factory=list)
    broken: bool = False

    def trainer(self) -> Trainer:
        return self.build()

    def context(self) -> SimpleRunContext:
        ctx = SimpleRunContext(self.run_id, self.root / "run")
        self.contexts.append(ctx)
        return ctx

    def samples(self) -> list[Sample]:
        rows = make_samples(self.root / "images")
        prepared = self.trainer().prepare(self.context(), rows)
        kept = [s for s in prepared if isinstance(s, Sample)]
        assert len(kept) == len(rows)
        return kept

    def events_named(self, message: str) -> int:
        return sum(1 for ctx in self.contexts for name, _ in ctx.events if name == message)


class LocalHarness(BaseHarness):
    def jobs_launched(self) -> int:
        return self.events_named("local training launched")

    def samples(self) -> list[Sample]:
        prepared = super().samples()
        if self.broken:  # nothing to learn from: the local trainer refuses, saying why
            return [
                Sample(s.data_row_id, s.image_uri, s.width, s.height, s.split) for s in prepared
            ]
        return prepared

    def break_training(self) -> None:
        self.broken = True


def local_harness(root: Path) -> AbstractContextManager[Harness]:
    from vmt.backends.local import LocalTrainer
    from vmt.backends.local.training_config import TrainConfig
    from vmt.config import Settings

    tiny = TrainConfig(seed=5, epochs=1, batch_size=8, input_size=64, device="cpu")
    outbound = OutboundRules.export_file()  # the rows are local files, as an export file's are
    return _plain(
        LocalHarness(
            "local", root, lambda: LocalTrainer(Settings(), config=tiny, outbound=outbound)
        )
    )


@contextmanager
def vertex_harness(root: Path) -> Iterator[Harness]:
    import os

    from vmt.backends.vertex import VertexTrainer
    from vmt.config import load_settings

    with local_gcp() as world:
        saved = dict(os.environ)
        os.environ.update(world.settings_env())
        world.vertex.training_polls = 4
        try:

            class VertexHarness(BaseHarness):
                def jobs_launched(self) -> int:
                    return world.vertex.creates("trainingPipelines")

                def break_training(self) -> None:
                    world.vertex.fail_training = "Training pipeline failed: quota exceeded"

            outbound = OutboundRules.export_file()
            yield VertexHarness(
                "vertex", root, lambda: VertexTrainer(load_settings(), outbound=outbound)
            )
        finally:
            os.environ.clear()
            os.environ.update(saved)


def scripted_harness(root: Path) -> AbstractContextManager[Harness]:
    from vmt.backends.scripted import ScriptedTrainer, TrainerScript

    script = TrainerScript(train_polls=3, unpredictable=frozenset({"row016"}))

    class ScriptedHarness(BaseHarness):
        def jobs_launched(self) -> int:
            return sum(1 for job in script.launched if job.startswith("training"))

        def break_training(self) -> None:
            script.fail_training = "the scripted cluster ran out of quota"

    return _plain(ScriptedHarness("scripted", root, lambda: ScriptedTrainer(script=script)))


@contextmanager
def _plain(harness: Harness) -> Iterator[Harness]:
    yield harness


HARNESSES: dict[str, Callable[[Path], AbstractContextManager[Harness]]] = {
    "local": local_harness,
    "vertex": vertex_harness,
    "scripted": scripted_harness,
}
