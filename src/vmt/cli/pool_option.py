"""``--pool`` of ``vmt select`` and ``vmt prelabel``: an export file as it is, or a Labelbox pool
exported first (into ``<run folder>/pools/exports/`` with ``--run``, else the state dir), with
progress on the command's display and a line saying what was exported and left out."""

from __future__ import annotations

from pathlib import Path

from vmt.config import Settings
from vmt.pipeline.context import RunObserver
from vmt.pool.pool_spec import PoolSpec


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
