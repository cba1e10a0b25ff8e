"""Split write-back: the splits a run gave rows reach the model run through
``assign_data_rows_to_split`` (real SDK, fake Labelbox), and a later export of the same model run
whose rows carry no split gets them back from the model run's data rows."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.labelbox_server import FakeLabelbox, make_export_row
from tests.integration.labelbox.conftest import FileRunContext, settings_for
from vmt.backends.labelbox import LabelboxConnection, LabelboxSource
from vmt.backends.labelbox.splits import write_back_splits
from vmt.domain import Sample, Split
from vmt.formats.labelbox_export import ExportOptions, read_samples

MR = "mr-splits"


def _sample(i: int, split: Split) -> Sample:
    return Sample(f"dr-{i:06d}", f"img-{i}.png", 640, 480, split)


def test_assigned_splits_are_written_back_and_reused_by_a_later_export(
    fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    rows = [make_export_row(i, model_run_id=MR, split=None) for i in range(5)]
    fake_labelbox.add_model_run(
        MR, rows=rows, classes=["car"], data_splits={f"dr-{i:06d}": "UNASSIGNED" for i in range(5)}
    )
    samples = [
        _sample(0, Split.TRAINING),
        _sample(1, Split.TRAINING),
        _sample(2, Split.VALIDATION),
        _sample(3, Split.TEST),
        _sample(4, Split.TRAINING),  # Labelbox gave this one its split: not the run's to write
    ]
    connection = LabelboxConnection(settings_for(fake_labelbox), MR)
    written = write_back_splits(connection, samples, assigned={f"dr-{i:06d}" for i in range(4)})
    assert written == {"TEST": 1, "TRAINING": 2, "VALIDATION": 1}
    assert fake_labelbox.model_runs[MR].data_splits == {
        "dr-000000": "TRAINING",
        "dr-000001": "TRAINING",
        "dr-000002": "VALIDATION",
        "dr-000003": "TEST",
        "dr-000004": "UNASSIGNED",
    }
    assert "assignDataSplitPyApi" in fake_labelbox.operations()

    # a later run of the same model run: the export rows carry no split, the model run has them
    export = tmp_path / "export.ndjson"
    LabelboxSource(settings_for(fake_labelbox), MR).export(
        FileRunContext("run-2", tmp_path / "run-2"), export
    )
    options = ExportOptions(require_dimensions=False, require_boxes=False, keep_unassigned=True)
    splits = {
        s.data_row_id: s.split for s in read_samples(export, options) if isinstance(s, Sample)
    }
    assert splits == {
        "dr-000000": Split.TRAINING,
        "dr-000001": Split.TRAINING,
        "dr-000002": Split.VALIDATION,
        "dr-000003": Split.TEST,
        "dr-000004": Split.UNASSIGNED,
    }
