"""``--pool`` of ``vmt select`` and ``vmt prelabel``, and the run that predicts on it: an export
file as it is, or a Labelbox pool exported first (into ``<run folder>/pools/exports/`` with
``--run``, else the state dir), with progress on the command's display and a line saying what was
exported and left out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vmt.config import Settings
from vmt.pipeline.context import RunObserver
from vmt.pipeline.protocols import Trainer
from vmt.pipeline.store import RunStore
from vmt.pool.pool_spec import PoolSpec


@dataclass(frozen=True)
class PredictingRun:
    """A finished run whose model predicts on pools: its store and its own trainer."""

    run_id: str
    settings: Settings
    store: RunStore
    trainer: Trainer

    @classmethod
    def load(cls, run_id: str, settings: Settings) -> PredictingRun:
        """``UnknownRunError`` when the store has no run ``run_id``. The CLI's pools are the
        operator's own: their images may be local files (``OutboundRules.export_file``)."""
        from vmt.backends.factory import trained_run
        from vmt.formats.outbound_policy import OutboundRules

        store, trainer = trained_run(run_id, settings, outbound=OutboundRules.export_file())
        return cls(run_id, settings, store, trainer)

    def pool_file(self, spec: PoolSpec, *, project_id: str | None, observer: RunObserver) -> Path:
        """``pool_file`` for this run: a Labelbox pool is exported under its run folder."""
        return pool_file(
            spec,
            settings=self.settings,
            base=self.store.run_dir(self.run_id),
            run_id=self.run_id,
            project_id=project_id,
            observer=observer,
        )


def pool_file(
    spec: PoolSpec,
    *,
    settings: Settings,
    base: Path,
    run_id: str | None,
    project_id: str | None,
    observer: RunObserver,
) -> Path:
    """The export file to work on for ``spec``; a Labelbox pool goes under ``base`` (the run
    folder, or the state dir without a run)."""
    if not spec.is_labelbox:
        return spec.path
    from vmt.backends.labelbox.pool_export import exports_folder, resolve_pool
    from vmt.cli.console import err_console
    from vmt.pipeline.context import DetachedRunContext

    watcher = DetachedRunContext(run_id or "pool", exports_folder(base), {}, observer=observer)
    path, export = resolve_pool(
        spec, settings=settings, base=base, project_id=project_id, watcher=watcher
    )
    if export is not None:
        err_console.print(export.summary(), highlight=False, soft_wrap=True)
    return path
