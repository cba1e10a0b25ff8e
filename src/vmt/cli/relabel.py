"""``vmt relabel``: send a run's likely label errors (rows where a confident prediction
disagrees with the ground truth, as the dashboard ranks them) to a Labelbox project as a batch."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("relabel")
    def relabel_command(
        run_id: str = typer.Option(..., "--run", help="A finished, evaluated run."),
        project_id: str | None = typer.Option(
            None, "--project", help="Send the rows to this Labelbox project as batch(es)."
        ),
        budget: int | None = typer.Option(
            None, "--budget", "-n", min=1, help="The most confident N rows only."
        ),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Also write them as a ranking.csv (vmt select's)."
        ),
        batch: str | None = typer.Option(
            None, "--batch", help="Batch name (default: vmt-label_errors-<hash of the rows>)."
        ),
        priority: int = typer.Option(5, "--priority", min=1, max=5, help="1 (highest) to 5."),
    ) -> None:
        """Rank a run's likely label errors (a prediction scored >= 0.70 on no labelled box or
        on a box of another class), most confident first; print them, write them, send them."""
        from vmt.cli.console import console
        from vmt.config import load_settings
        from vmt.pipeline.store import RunStore
        from vmt.service.dashboard.row_pages import likely_label_errors, ranking_csv
        from vmt.service.dashboard.run_rows import RunRows

        settings = load_settings()
        store = RunStore(settings.state_dir / "runs.sqlite")
        rows = RunRows(store)
        try:
            found = likely_label_errors(rows, run_id, limit=budget)
        finally:
            rows.close()
            store.close()
        ids = [row.data_row_id for row in found]
        if output is not None:
            from vmt.durable_files import write_atomic

            write_atomic(output, ranking_csv(found).encode("utf-8"))
        console.print(f"run {run_id}: {len(ids)} likely label errors", highlight=False)
        if project_id is not None and ids:
            _send(project_id, ids, batch, priority)


def _send(project_id: str, ids: list[str], batch: str | None, priority: int) -> None:
    from vmt.backends.labelbox.labelling_loop import send_to_project
    from vmt.backends.labelbox.project import LabelboxProject
    from vmt.cli.labelling_report import print_batch_summary
    from vmt.config import load_settings
    from vmt.selection.strategies import batch_name

    project = LabelboxProject(load_settings(), project_id)
    name = batch or batch_name("label_errors", ids)
    summary = send_to_project(project, data_row_ids=ids, batch=name, priority=priority)
    print_batch_summary(project_id, summary)
