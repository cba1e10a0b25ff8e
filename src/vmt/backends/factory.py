"""Backends from a run's serialisable configuration, so any process can resume any run.

Known kinds: sources ``files`` and ``labelbox``; sinks ``folder`` and ``labelbox``; trainers
those of ``vmt.backends.registry``. Each backend module is imported only when a run uses it
(torch, the Labelbox and Google SDKs stay out of processes that do not need them).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from vmt.backends.registry import trainer_spec
from vmt.config import Settings
from vmt.errors import ConfigError
from vmt.formats.outbound_policy import OutboundRules
from vmt.pipeline.protocols import Sink, Source, Trainer
from vmt.pipeline.run_config import UNASSIGNED_OPTION, BackendSpec, RunConfig
from vmt.pipeline.store import RunStore

SOURCES = ("files", "labelbox")
SINKS = ("folder", "labelbox")


@dataclass(frozen=True, slots=True)
class Backends:
    """One run's backends (implements ``vmt.pipeline.protocols.Backends``)."""

    source: Source
    trainer: Trainer
    sink: Sink


def build_backends(config: RunConfig, settings: Settings) -> Backends:
    """The ``BackendsFactory`` the CLI and the service inject into ``Runner``. Raises
    ``ConfigError`` for an unknown kind, a missing option or a missing optional extra.

    The outbound policy follows the source: a run on an export file (``files``, only the CLI
    makes one) may read local images and reach any address; every other run (a Labelbox model
    run, so every run of the service) gets the service's rules (``outbound.rules_for``)."""
    outbound = OutboundRules.export_file() if config.source.kind == "files" else None
    return Backends(
        source=build_source(config.source, settings),
        trainer=build_trainer(config.trainer, settings, outbound=outbound),
        sink=build_sink(config.sink, settings),
    )


_EXTRAS = {"vmt.backends.labelbox": "labelbox"}


def _backend_class(module: str, name: str) -> Any:
    """Import ``module.name`` on first use; a missing optional dependency names its extra."""
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get(module)
        hint = f' (pip install "vertex-model-training[{extra}]")' if extra else ""
        raise ConfigError(f"{name} is not available: {exc}{hint}") from exc


def _option(spec: BackendSpec, name: str) -> Any:
    try:
        return spec.options[name]
    except KeyError:
        raise ConfigError(f"{spec.kind} backend: option {name!r} is missing") from None


def build_source(spec: BackendSpec, settings: Settings) -> Source:
    if spec.kind == "files":
        file_source = _backend_class("vmt.backends.files", "FileSource")
        images_dir = spec.options.get("images_dir")
        export = Path(_option(spec, "export_path"))
        return cast(
            Source,
            file_source(
                export,
                Path(images_dir) if images_dir else None,
                unassigned=spec.options.get(UNASSIGNED_OPTION),
            ),
        )
    if spec.kind == "labelbox":
        labelbox_source = _backend_class("vmt.backends.labelbox", "LabelboxSource")
        return cast(
            Source,
            labelbox_source(
                settings,
                _option(spec, "model_run_id"),
                unassigned=spec.options.get(UNASSIGNED_OPTION, "skip"),
            ),
        )
    raise ConfigError(f"unknown source {spec.kind!r} (known: {', '.join(SOURCES)})")


def build_trainer(
    spec: BackendSpec, settings: Settings, *, outbound: OutboundRules | None = None
) -> Trainer:
    """The registered trainer ``spec.kind`` with the run's options (checked against the
    trainer's options model) applied to ``settings``; its image fetches follow ``outbound``
    (None: the service's rules)."""
    return trainer_spec(spec.kind).build(settings, spec.options, outbound=outbound)


def trained_run(
    run_id: str, settings: Settings, *, outbound: OutboundRules | None = None
) -> tuple[RunStore, Trainer]:
    """THE way to load a run whose model predicts (``vmt predict``/``select``/``prelabel``,
    the service's pool routes): the run store of ``settings`` and the trainer the run was
    trained with (its stored config), whose fetches follow ``outbound`` (None: the service's
    rules). Raises ``UnknownRunError`` for an unknown run, ``ConfigError`` as
    ``build_trainer``."""
    store = RunStore.for_settings(settings)
    trainer = build_trainer(store.get_run(run_id).config.trainer, settings, outbound=outbound)
    return store, trainer


def estimated_cost(settings: Settings, spec: BackendSpec) -> float | None:
    """The most the run's training may cost in USD (the trainer's estimate with the run's
    options applied; None: the trainer has nothing to pay for)."""
    trainer = trainer_spec(spec.kind)
    return trainer.estimate_cost(trainer.settings_for(settings, spec.options))


def build_sink(spec: BackendSpec, settings: Settings) -> Sink:
    if spec.kind == "folder":
        folder_sink = _backend_class("vmt.backends.files", "FolderSink")
        return cast(Sink, folder_sink(Path(_option(spec, "out_dir"))))
    if spec.kind == "labelbox":
        labelbox_sink = _backend_class("vmt.backends.labelbox", "LabelboxSink")
        return cast(Sink, labelbox_sink(settings, _option(spec, "model_run_id")))
    raise ConfigError(f"unknown sink {spec.kind!r} (known: {', '.join(SINKS)})")
