"""``vmt run --export`` with no ``--unassigned``: the prepare stage applies the same rule as
``vmt convert`` (`vmt.formats.split_policy`): a project export gets auto splits and the run's
history says so; a model-run export keeps skip; a named policy wins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.builders.labelbox_rows import lines, model_run_row, project_row
from tests.fakes.simple_run_context import SimpleRunContext
from tests.integration.pipeline.fakes import Calls, FakeTrainer
from vmt.errors import InputError
from vmt.formats.export_options import auto_split
from vmt.pipeline.stages import prepare_stage

NOTE = (
    "no row has a split (a project export): splits assigned by --unassigned auto "
    "(80/10/10 by data row id)"
)
PROJECT = [project_row(f"dr-{i}") for i in range(20)]
SOME_UNASSIGNED = [model_run_row(f"dr-{i}") for i in range(3)] + [model_run_row("dr-x", split=None)]


def prepare(tmp_path: Path, rows: list[Any], unassigned: str | None) -> tuple[Any, list[str]]:
    export = tmp_path / "export.ndjson"
    export.write_bytes(b"".join(lines(*rows)))
    ctx = SimpleRunContext("run-1", tmp_path / "run")
    result = prepare_stage(
        FakeTrainer(Calls()),
        ctx,
        export=export,
        locate_image=lambda uri: uri,
        samples_out=tmp_path / "samples.ndjson",
        rejections_out=tmp_path / "rejections.jsonl",
        unassigned=unassigned,
    )
    return result, [message for message, _ in ctx.events]


def test_a_project_export_gets_auto_splits_and_the_run_says_so(tmp_path: Path) -> None:
    result, events = prepare(tmp_path, PROJECT, None)
    expected: dict[str, int] = {}
    for i in range(20):
        split = auto_split(f"dr-{i}").value
        expected[split] = expected.get(split, 0) + 1
    assert result.by_split == expected and len(expected) > 1
    assert result.rejected == 0
    assert NOTE in events


def test_a_model_run_export_keeps_skip(tmp_path: Path) -> None:
    result, events = prepare(tmp_path, SOME_UNASSIGNED, None)
    assert result.by_split == {"training": 3}
    assert result.rejections_by_reason == {"unassigned_split": 1}
    assert NOTE not in events


def test_a_named_policy_wins(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="20 of 20 rows usable, none in the training split"):
        prepare(tmp_path, PROJECT, "validation")
    result, events = prepare(tmp_path, PROJECT, "auto")
    assert sum(result.by_split.values()) == 20
    assert NOTE not in events  # the user named it: nothing to tell


def test_a_named_skip_on_a_project_export_fails_saying_why(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="20 unassigned_split"):
        prepare(tmp_path, PROJECT, "skip")
