"""The runner with the real Labelbox source and sink (built by the backend factory from a
``labelbox_run_config``), the real labelbox SDK and the fake Labelbox server; the trainer is the
pipeline tests' fake, so this runs in a second without torch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.labelbox_server import FakeLabelbox
from tests.integration.pipeline.fakes import MODEL_RUN, Calls, FakeTrainer, export_row
from vmt.backends.factory import Backends, build_sink, build_source
from vmt.config import Settings, load_settings
from vmt.errors import InputError
from vmt.pipeline.run_config import RunConfig, labelbox_run_config
from vmt.pipeline.runner import Runner
from vmt.pipeline.store import RunState, RunStore
from vmt.retry import Backoff

SPLITS = ["training"] * 6 + ["validation"] * 2 + ["test"] * 2


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeLabelbox]:
    server = FakeLabelbox(tmp_path / "fake-labelbox").start()
    server.add_model_run(
        MODEL_RUN,
        rows=[export_row(i, split) for i, split in enumerate(SPLITS)],
        classes=["square", "circle"],
    )
    try:
        yield server
    finally:
        server.stop()


def _runner(tmp_path: Path, fake: FakeLabelbox, calls: Calls) -> Runner:
    settings = load_settings(
        state_dir=tmp_path / "state",
        labelbox_api_key=fake.api_key,
        labelbox_endpoint=fake.endpoint,
        labelbox_poll_seconds=0.01,
        prediction_chunk_size=3,
    )

    def factory(config: RunConfig, settings: Settings) -> Backends:
        return Backends(
            source=build_source(config.source, settings),
            trainer=FakeTrainer(calls),
            sink=build_sink(config.sink, settings),
        )

    return Runner(
        settings,
        store=RunStore.for_settings(settings),
        backends_factory=factory,
        backoff=Backoff(base=0.001, cap=0.001, deadline=5.0, max_attempts=3, sleep=lambda s: None),
        heartbeat_seconds=0.05,
    )


def test_a_labelbox_run_completes_and_leaves_its_results_in_labelbox(
    tmp_path: Path, fake: FakeLabelbox
) -> None:
    runner = _runner(tmp_path, fake, Calls())
    run_id = runner.create_run(labelbox_run_config(model_run_id=MODEL_RUN, trainer="fake"))
    record = runner.advance(run_id)
    runner.store.close()

    assert record.state is RunState.COMPLETE, record.error
    statuses = fake.statuses(MODEL_RUN)
    assert [s["status"] for s in statuses][:3] == [
        "EXPORTING_DATA",
        "PREPARING_DATA",
        "TRAINING_MODEL",
    ]
    assert statuses[-1]["status"] == "COMPLETE"
    final = statuses[-1]["metadata"]
    assert final["AP50"] == pytest.approx(1.0) and final["report"]
    assert final["labelbox_predictions_rows"] == 4
    assert final["labelbox_predictions_imports"] == 2  # chunks of 3
    predictions = fake.predictions(MODEL_RUN)
    assert len(predictions) == 4 and all(p["confidence"] == pytest.approx(0.9) for p in predictions)
    assert {p["dataRow"]["id"] for p in predictions} == {"row-6", "row-7", "row-8", "row-9"}


def test_a_failed_labelbox_run_says_why_on_the_model_run(
    tmp_path: Path, fake: FakeLabelbox
) -> None:
    calls = Calls()
    calls.train_failures.append(InputError("class 'circle' has 3 training images; add more " * 9))
    runner = _runner(tmp_path, fake, calls)
    run_id = runner.create_run(labelbox_run_config(model_run_id=MODEL_RUN, trainer="fake"))
    record = runner.advance(run_id)
    runner.store.close()

    assert record.state is RunState.FAILED
    final = fake.statuses(MODEL_RUN)[-1]
    assert final["status"] == "FAILED"
    assert "circle" in final["errorMessage"] and len(final["errorMessage"]) <= 255
    assert fake.predictions(MODEL_RUN) == []
