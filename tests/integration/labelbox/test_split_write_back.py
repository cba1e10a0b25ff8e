"""Split write-back: rows a Labelbox model run leaves unassigned get the run's ``unassigned``
policy while the run exports them, those splits reach the model run through
``assign_data_rows_to_split`` (real SDK, fake Labelbox), and a later run of the same model run
(whatever its policy) reads them back from the model run's data rows instead of choosing again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.labelbox_server import FakeLabelbox, make_export_row
from tests.integration.labelbox.conftest import FileRunContext, settings_for
from vmt.backends.labelbox import LabelboxConnection, LabelboxSource
from vmt.backends.labelbox import splits as splits_module
from vmt.backends.labelbox.splits import write_back_splits
from vmt.domain import Sample, Split
from vmt.formats.export_options import ExportOptions, auto_split
from vmt.formats.labelbox_export import read_samples

MR = "mr-splits"
ROWS = 40


def _ids(n: int) -> list[str]:
    return [f"dr-{i:06d}" for i in range(n)]


def _splits(export: Path) -> dict[str, Split]:
    options = ExportOptions(require_dimensions=False, require_boxes=False, keep_unassigned=True)
    return {s.data_row_id: s.split for s in read_samples(export, options) if isinstance(s, Sample)}


def _export(fake: FakeLabelbox, tmp_path: Path, name: str, unassigned: str) -> FileRunContext:
    ctx = FileRunContext(name, tmp_path / name)
    LabelboxSource(settings_for(fake), MR, unassigned=unassigned).export(
        ctx, tmp_path / f"{name}.ndjson"
    )
    return ctx


def test_unassigned_rows_get_the_run_s_splits_which_are_written_back_and_reused(
    fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    # rows 0-29 carry no split anywhere; 30-34 have one in the model run only; 35-39 in the
    # export itself. Only 0-29 are the run's to assign and write back.
    rows = [make_export_row(i, model_run_id=MR, split=None) for i in range(35)]
    rows += [make_export_row(i, model_run_id=MR, split="test") for i in range(35, ROWS)]
    given = {f"dr-{i:06d}": "VALIDATION" for i in range(30, 35)}
    fake_labelbox.add_model_run(
        MR,
        rows=rows,
        classes=["car"],
        data_splits={**{i: "UNASSIGNED" for i in _ids(30)}, **given},
    )

    first = _export(fake_labelbox, tmp_path, "run-1", "auto")

    expected = {i: auto_split(i) for i in _ids(30)}
    expected |= {i: Split.VALIDATION for i in given} | {i: Split.TEST for i in _ids(ROWS)[35:]}
    assert _splits(tmp_path / "run-1.ndjson") == expected
    assert {s for s in expected.values()} == {Split.TRAINING, Split.VALIDATION, Split.TEST}
    written = {i: s for i, s in fake_labelbox.model_runs[MR].data_splits.items() if i in _ids(30)}
    assert written == {i: auto_split(i).value.upper() for i in _ids(30)}
    assert {i: fake_labelbox.model_runs[MR].data_splits[i] for i in given} == given
    (event,) = [data for message, data in first.events if "written back" in message]
    assert sum(v for v in event.values() if isinstance(v, int)) == 30
    assert fake_labelbox.operations().count("assignDataSplitPyApi") == 3  # one per split

    # a later run with the default policy (skip) trains on the same splits: nothing assigned
    second = _export(fake_labelbox, tmp_path, "run-2", "skip")
    assert _splits(tmp_path / "run-2.ndjson") == expected
    assert not [m for m, _ in second.events if "written back" in m]
    assert fake_labelbox.operations().count("assignDataSplitPyApi") == 3


def test_with_skip_nothing_is_assigned_or_written(
    fake_labelbox: FakeLabelbox, tmp_path: Path
) -> None:
    rows = [make_export_row(i, model_run_id=MR, split=None) for i in range(5)]
    fake_labelbox.add_model_run(
        MR, rows=rows, classes=["car"], data_splits={i: "UNASSIGNED" for i in _ids(5)}
    )
    _export(fake_labelbox, tmp_path, "run-1", "skip")
    assert set(_splits(tmp_path / "run-1.ndjson").values()) == {Split.UNASSIGNED}
    assert "assignDataSplitPyApi" not in fake_labelbox.operations()
    assert set(fake_labelbox.model_runs[MR].data_splits.values()) == {"UNASSIGNED"}


def test_write_back_goes_in_parts_of_at_most_assign_rows(
    fake_labelbox: FakeLabelbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(splits_module, "ASSIGN_ROWS", 4)
    fake_labelbox.add_model_run(MR, rows=[], classes=["car"])
    chosen = {Split.TRAINING: _ids(9), Split.VALIDATION: [], Split.TEST: ["dr-x"]}
    connection = LabelboxConnection(settings_for(fake_labelbox), MR)
    written = write_back_splits(connection, lambda split: iter(chosen[split]))
    assert written == {"TRAINING": 9, "TEST": 1}
    assert fake_labelbox.operations().count("assignDataSplitPyApi") == 4  # 4 + 4 + 1, then 1
    assert fake_labelbox.model_runs[MR].data_splits == {
        **{i: "TRAINING" for i in _ids(9)},
        "dr-x": "TEST",
    }
