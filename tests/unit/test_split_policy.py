"""The split policy when the user names none: ``auto`` (said in a note) for an export where no
row has a split, ``skip`` as soon as one row has one, the user's policy always."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.builders.labelbox_rows import lines, model_run_row, project_row, v1_row
from vmt.formats.json_records import Record, ndjson_records
from vmt.formats.split_policy import UnassignedChoice, choose_unassigned

NOTE = "splits assigned by --unassigned auto (80/10/10 by data row id)"


def records(*rows: Any) -> list[Record]:
    return list(ndjson_records(lines(*rows)))


def choose(*rows: Any, model_run_id: str | None = None) -> UnassignedChoice:
    return choose_unassigned(None, records(*rows), model_run_id)


@pytest.mark.parametrize(
    ("rows", "kind"),
    [
        ([project_row("a"), project_row("b")], "a project export"),
        ([model_run_row("a", split=None), model_run_row("b", split="nonsense")],
         "a model-run export with every row unassigned"),
        ([v1_row("a", split=None), v1_row("b", split="")], "a v1 export without Data Split"),
        ([{"data_row": {"id": "a", "row_data": "gs://b/a.jpg"}}], "a dataset export"),
        ([b"{broken\n", b"[1, 2]\n", project_row("a")], "a project export"),
    ],
)  # fmt: skip
def test_no_row_with_a_split_gives_auto_and_says_so(rows: list[Any], kind: str) -> None:
    choice = choose(*rows)
    assert choice.policy == "auto"
    assert choice.note == f"no row has a split ({kind}): {NOTE}"


@pytest.mark.parametrize(
    "rows",
    [
        [model_run_row("a", split=None), model_run_row("b", split="training")],
        [project_row("a"), model_run_row("b", split="VAL")],  # Split.parse spellings
        [v1_row("a", split=None), v1_row("b", split="test")],
        [model_run_row("a", split="training")],
    ],
)
def test_one_row_with_a_split_keeps_skip(rows: list[Any]) -> None:
    assert choose(*rows) == UnassignedChoice("skip", None)


def test_nothing_recognisable_keeps_skip() -> None:
    assert choose() == UnassignedChoice("skip", None)
    assert choose(b"{broken\n", {"no": "row"}) == UnassignedChoice("skip", None)


def test_the_split_of_the_run_asked_for() -> None:
    row = model_run_row("a", split=None, extra_runs={"run-2": {"split": "training", "labels": []}})
    assert choose(row).policy == "skip"  # some run of the row has one
    assert choose(row, model_run_id="run-1").policy == "auto"
    assert choose(row, model_run_id="run-2").policy == "skip"


def _then_fail(rows: list[Record]) -> Iterator[Record]:
    yield from rows
    raise AssertionError("read past the first row with a split")


def test_stops_at_the_first_row_with_a_split() -> None:
    rows = records(model_run_row("a", split=None), model_run_row("b", split="validation"))
    assert choose_unassigned(None, _then_fail(rows)).policy == "skip"


@pytest.mark.parametrize("given", ["skip", "training", "validation", "test", "auto"])
def test_a_named_policy_wins_and_reads_nothing(given: str) -> None:
    assert choose_unassigned(given, _then_fail([])) == UnassignedChoice(given, None)
