"""``vmt prelabel``: a finished run's boxes on a pool as MAL pre-labels (a file, or a project)."""

from __future__ import annotations

from pathlib import Path

import typer

from vmt.pool.pool_spec import POOL_HELP


def register(app: typer.Typer) -> None:
    @app.command("prelabel")
    def prelabel_command(
        run_id: str = typer.Option(..., "--run", help="A finished run: its model predicts."),
        pool: str | None = typer.Option(
            None,
            "--pool",
            help=POOL_HELP + " Default with --project: labelbox-project:PROJECT.",
        ),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Write the pre-label NDJSON here (no Labelbox)."
        ),
        project_id: str | None = typer.Option(
            None, "--project", help="Import the pre-labels into this Labelbox project (MAL)."
        ),
        confidence: str = typer.Option(
            "auto", "--confidence", help="'auto' (the run's F1-optimal confidence) or a number."
        ),
        images_dir: Path | None = typer.Option(
            None, "--images-dir", help="Folder that relative row_data paths are relative to."
        ),
    ) -> None:
        """Pre-label a pool with a finished run's model (model-assisted labelling)."""
        from vmt.cli.console import console
        from vmt.cli.pool_option import PredictingRun
        from vmt.cli.run_display import RichRunDisplay
        from vmt.config import load_settings
        from vmt.errors import InputError
        from vmt.pool.pool_spec import PoolKind, PoolSpec
        from vmt.pool.prelabel import copy_to, parse_confidence, prelabel_pool

        if output is None and project_id is None:
            raise InputError("give --output FILE, --project ID, or both")
        if pool is None:
            if project_id is None:
                raise InputError("give --pool (with --output) or --project")
            pool = f"{PoolKind.LABELBOX_PROJECT}:{project_id}"  # its rows without a label
        spec = PoolSpec.parse(pool)
        spec.check_prelabel_target(project_id)
        chosen = parse_confidence(confidence)
        settings = load_settings()
        run = PredictingRun.load(run_id, settings)
        with RichRunDisplay() as display:
            pool_path = run.pool_file(spec, project_id=project_id, observer=display)
            result = prelabel_pool(
                run.store,
                run_id,
                pool=pool_path,
                trainer=run.trainer,
                confidence=chosen,
                image_base=images_dir.resolve() if images_dir else None,
                observer=display,
            )
        reused = " (pool predictions reused)" if result.pool.reused else ""
        console.print(
            f"{result.rows} pre-labels on {result.data_rows} of {result.pool.predicted_rows} rows "
            f"at confidence {result.threshold:.2f} ({result.threshold_source}){reused}",
            highlight=False,
        )
        if output is not None:
            copy_to(result, output)
            console.print(f"pre-labels -> {output}", highlight=False)
        if project_id is not None:
            from vmt.backends.labelbox.labelling_loop import prelabel_project
            from vmt.backends.labelbox.project import LabelboxProject
            from vmt.cli.labelling_report import print_prelabel_summary

            imported = prelabel_project(
                LabelboxProject(settings, project_id),
                run_id=run_id,
                prelabels=result,
                pool_export=pool_path,
            )
            print_prelabel_summary(project_id, imported.summary)
