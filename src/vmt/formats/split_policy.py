"""The split policy for rows without a split when the user names none (``vmt convert`` and
``vmt run --export``, without ``--unassigned``).

A model-run export carries the run's splits: a row the run left unassigned is left out
(``skip``) and reported, so that no row moves between splits behind the user's back. An export
where no row has a split (a project export, a dataset export, a v1 export without ``Data
Split``) has no split to keep: ``skip`` would leave out every row, so the rows get the
deterministic ``auto`` split (`vmt.formats.export_options.auto_split`) and the caller says so
with the choice's ``note``. A policy the user names always wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vmt.domain import Split
from vmt.formats.json_records import Record
from vmt.formats.labelbox_export import label_sections

__all__ = ["UnassignedChoice", "choose_unassigned", "kind_without_splits"]


@dataclass(frozen=True, slots=True)
class UnassignedChoice:
    """The policy for rows without a split (one of ``UNASSIGNED_POLICIES``) and ``note``, the
    line to show the user when the policy was chosen for them (None when nothing to say)."""

    policy: str
    note: str | None = None


def choose_unassigned(
    given: str | None, records: Iterable[Record], model_run_id: str | None = None
) -> UnassignedChoice:
    """``given`` when the user named a policy; otherwise ``skip`` when a row of ``records`` (an
    export, as `vmt.formats.json_records` reads it) has a split, and ``auto`` with a note when
    no row has one. Reads ``records`` only when ``given`` is None, and stops at the first row
    with a split; an export with no recognisable row keeps ``skip`` (nothing to assign)."""
    if given is not None:
        return UnassignedChoice(given)
    kind = kind_without_splits(records, model_run_id)
    if kind is None:
        return UnassignedChoice("skip")
    return UnassignedChoice(
        "auto",
        f"no row has a split ({kind}): splits assigned by --unassigned auto "
        "(80/10/10 by data row id)",
    )


def kind_without_splits(records: Iterable[Record], model_run_id: str | None = None) -> str | None:
    """None when a row has a split (or no row is a Labelbox export row); else what kind of
    export holds no split, e.g. ``"a project export"``. A v2 row's split is its model run's
    (the one named ``model_run_id`` when given, any of them otherwise); a v1 row's is its
    ``Data Split``. Spellings as `Split.parse` reads them."""
    kind: str | None = None
    for _, value in records:
        if type(value) is not dict:
            continue
        if "data_row" in value:
            sections = label_sections(value)
            if model_run_id is not None:
                sections = [s for s in sections if s[0] == model_run_id]
            if any(_has_split(section) for _, section in sections):
                return None
            kind = kind or _v2_kind(value)
        elif "DataRow ID" in value:
            if Split.parse(value.get("Data Split")) is not Split.UNASSIGNED:
                return None
            kind = kind or "a v1 export without Data Split"
    return kind


def _has_split(section: Any) -> bool:
    return type(section) is dict and Split.parse(section.get("split")) is not Split.UNASSIGNED


def _v2_kind(row: dict[str, Any]) -> str:
    if type(row.get("experiments")) is dict and row["experiments"]:
        return "a model-run export with every row unassigned"
    if type(row.get("projects")) is dict and row["projects"]:
        return "a project export"
    return "a dataset export"
