"""The serialisable description of a run: which source, trainer and sink, with their options.

Stored as JSON in the run store when the run is created, so any process (``vmt resume``, the web
service's worker) can rebuild the run's backends with ``vmt.backends.factory.build_backends``.
Options hold plain JSON values only; secrets never go here (they come from ``Settings``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vmt.errors import InputError
from vmt.pipeline.protocols import DRY_RUN_OPTION

UNASSIGNED_OPTION = "unassigned"
"""Source option: the split a row without one gets (``skip``, ``training``, ``validation``,
``test`` or ``auto``; ``vmt.formats.export_options.split_for_unassigned``). Absent: ``skip`` for
a Labelbox model run; for an export file, the policy the export calls for
(``vmt.formats.split_policy.choose_unassigned``: ``auto`` when no row has a split)."""


class BackendSpec(BaseModel):
    """One backend by kind (``files``, ``labelbox``, ``local``, ``vertex``, ``folder``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    options: dict[str, Any] = Field(default_factory=dict)


class RunConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: BackendSpec
    trainer: BackendSpec
    sink: BackendSpec
    label: str | None = None
    """A human name for listings (e.g. the export file name or the Labelbox model run id)."""

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.model_validate_json(text)


def files_run_config(
    *,
    export: str,
    out_dir: str,
    images_dir: str | None = None,
    trainer: str = "local",
    trainer_options: dict[str, Any] | None = None,
    unassigned: str | None = None,
) -> RunConfig:
    """The configuration of a command-line run on an export file with a result folder
    (``unassigned`` None: the policy the export calls for, see ``UNASSIGNED_OPTION``)."""
    source_options: dict[str, Any] = {"export_path": export}
    if images_dir is not None:
        source_options["images_dir"] = images_dir
    if unassigned is not None:
        source_options[UNASSIGNED_OPTION] = unassigned
    return RunConfig(
        source=BackendSpec(kind="files", options=source_options),
        trainer=BackendSpec(kind=trainer, options=dict(trainer_options or {})),
        sink=BackendSpec(kind="folder", options={"out_dir": out_dir}),
        label=export.rsplit("/", 1)[-1],
    )


def labelbox_run_config(
    *,
    model_run_id: str,
    trainer: str = "local",
    trainer_options: dict[str, Any] | None = None,
    unassigned: str = "skip",
) -> RunConfig:
    """The configuration of a run on a Labelbox model run: rows from it, results back into it.
    ``unassigned``: the split policy for rows the model run leaves unassigned (see
    ``UNASSIGNED_OPTION``)."""
    options = {"model_run_id": model_run_id}
    source_options: dict[str, Any] = dict(options)
    if unassigned != "skip":
        source_options[UNASSIGNED_OPTION] = unassigned
    return RunConfig(
        source=BackendSpec(kind="labelbox", options=source_options),
        trainer=BackendSpec(kind=trainer, options=dict(trainer_options or {})),
        sink=BackendSpec(kind="labelbox", options=dict(options)),
        label=f"labelbox:{model_run_id}",
    )


def requested_run_config(
    *,
    export: Path | None,
    out: Path | None,
    model_run: str | None,
    trainer: str = "local",
    images_dir: Path | None = None,
    train_seconds: float | None = None,
    seed: int | None = None,
    dry_run: bool = False,
    unassigned: str | None = None,
) -> RunConfig:
    """The configuration ``vmt run`` asks for: an export file with a results folder, or a
    Labelbox model run; ``unassigned`` None when the user named no policy (see
    ``UNASSIGNED_OPTION``). Raises ``InputError`` for a combination that cannot run (both or
    neither source, no ``out`` with ``export``, a missing export file)."""
    if (export is None) == (model_run is None):
        raise InputError("give exactly one of --export FILE (with --out) or --model-run ID")
    options: dict[str, Any] = {}
    if train_seconds is not None:
        options["train_seconds"] = train_seconds
    if seed is not None:
        options["seed"] = seed
    if dry_run:
        options[DRY_RUN_OPTION] = True
    if model_run is not None:
        return labelbox_run_config(
            model_run_id=model_run,
            trainer=trainer,
            trainer_options=options,
            unassigned=unassigned or "skip",
        )
    assert export is not None
    if out is None:
        raise InputError("--out is required with --export")
    if not export.is_file():
        raise InputError(f"export file not found: {export}")
    return files_run_config(
        export=str(export.resolve()),
        out_dir=str(out.resolve()),
        images_dir=str(images_dir.resolve()) if images_dir else None,
        trainer=trainer,
        trainer_options=options,
        unassigned=unassigned,
    )
