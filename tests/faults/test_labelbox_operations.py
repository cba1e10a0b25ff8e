"""Part 7 for the Labelbox fake: every GraphQL operation (and file download) the fake answers
is sent by a named function of the real ``labelbox`` SDK, captured from a run, and listed in
docs/reliability.md with the SDK version it was captured from."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.fakes.labelbox_catalog import CATALOG_OPERATIONS
from tests.fakes.labelbox_projects import OPERATIONS as PROJECT_OPERATIONS
from tests.fakes.labelbox_server import _OPERATIONS, FakeLabelbox, make_export_row
from tests.faults import labelbox_operations
from tests.integration.labelbox.conftest import FileRunContext, settings_for
from tests.integration.pipeline.fakes import MODEL_RUN, Calls, FakeTrainer, export_row
from vmt.backends.factory import Backends, build_sink, build_source
from vmt.backends.labelbox import LabelboxSource
from vmt.backends.labelbox.pool_export import export_pool
from vmt.backends.labelbox.project import LabelboxWorkspace
from vmt.config import Settings, load_settings
from vmt.pipeline.run_config import RunConfig, labelbox_run_config
from vmt.pipeline.runner import Runner
from vmt.pipeline.store import RunState, RunStore
from vmt.pool.pool_spec import PoolSpec
from vmt.retry import Backoff

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
SPLITS = ["training"] * 6 + ["validation"] * 2 + ["test"] * 2
UPLOAD = "createMEAPredictionImportByFilePyApi"


def _run_once(folder: Path) -> None:
    """A whole Labelbox run (export, publish, statuses) plus an export whose rows carry no
    split (so the splits are asked of the model run's data rows)."""
    fake = FakeLabelbox(folder / "fake").start()
    try:
        fake.add_model_run(
            MODEL_RUN,
            rows=[export_row(i, split) for i, split in enumerate(SPLITS)],
            classes=["square", "circle"],
        )
        settings = load_settings(
            state_dir=folder / "state",
            labelbox_api_key=fake.api_key,
            labelbox_endpoint=fake.endpoint,
            labelbox_poll_seconds=0.01,
            prediction_chunk_size=3,
        )

        def factory(config: RunConfig, settings: Settings) -> Backends:
            return Backends(
                source=build_source(config.source, settings),
                trainer=FakeTrainer(Calls()),
                sink=build_sink(config.sink, settings),
            )

        runner = Runner(
            settings,
            store=RunStore.for_settings(settings),
            backends_factory=factory,
            backoff=Backoff(base=0.001, cap=0.001, deadline=5.0, sleep=lambda s: None),
            heartbeat_seconds=0.05,
        )
        run_id = runner.create_run(labelbox_run_config(model_run_id=MODEL_RUN, trainer="fake"))
        assert runner.advance(run_id).state is RunState.COMPLETE
        runner.store.close()

        no_split = "mr-no-split"
        fake.add_model_run(
            no_split,
            rows=[make_export_row(i, model_run_id=no_split, split=None) for i in range(4)],
            classes=["car"],
            data_splits={f"dr-{i:06d}": "TRAINING" for i in range(4)},
        )
        source = LabelboxSource(settings_for(fake), no_split)
        source.export(FileRunContext("run-2", folder / "run-2"), folder / "export.ndjson")
        _export_pools(fake, folder)
    finally:
        fake.stop()


def _export_pools(fake: FakeLabelbox, folder: Path) -> None:
    """A project pool, a dataset pool against a project, and a global-keys pool."""
    fake.catalog.add_dataset(
        "ds-ops",
        [{"id": f"dr-{i:06d}", "global_key": f"k{i}", "row_data": "/x.png"} for i in range(4)],
    )
    fake.projects.add_project("proj-ops", classes=["car"], data_rows=["dr-000000", "dr-000001"],
                              labelled={"dr-000000"})  # fmt: skip
    keys = folder / "keys.txt"
    keys.write_text("k1\nk3\nunknown\n")
    workspace = LabelboxWorkspace(settings_for(fake))
    ctx = FileRunContext("run-3", folder / "run-3")
    for pool, project in [("labelbox-project:proj-ops", None),
                          ("labelbox-dataset:ds-ops", "proj-ops"),
                          (f"global-keys:{keys}", "proj-ops")]:  # fmt: skip
        export_pool(PoolSpec.parse(pool), workspace=workspace, folder=folder / "pools",
                    project_id=project, watcher=ctx)  # fmt: skip


def drive_everything() -> list[labelbox_operations.Sent]:
    with tempfile.TemporaryDirectory() as folder, labelbox_operations.capture() as sent:
        _run_once(Path(folder))
    return list(sent)


def test_every_operation_the_fake_answers_is_sent_by_a_named_sdk_function() -> None:
    rows = labelbox_operations.table(drive_everything())
    captured = {op: sdk for op, sdk, _caller in rows}
    answered = set(_OPERATIONS) | set(CATALOG_OPERATIONS) | {UPLOAD}
    unexplained = answered - set(captured)
    # An operation the fake answers but no SDK call sends is dead weight or a guess.
    assert not unexplained, f"answered by the fake but never sent by the SDK: {unexplained}"
    assert all(sdk.startswith("labelbox/") for sdk in captured.values()), captured
    doc = DOC.read_text()
    for op in answered | set(PROJECT_OPERATIONS):
        assert f"| `{op}` | `labelbox/" in doc, f"docs/reliability.md does not list {op}"
