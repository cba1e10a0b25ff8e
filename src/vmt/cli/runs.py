"""``vmt runs`` (a table of runs) and ``vmt runs show ID`` (everything about one run)."""

from __future__ import annotations

import typer

from vmt.cli.pipeline import ORCHESTRATOR_HELP, orchestrator_of

runs_app = typer.Typer(
    help="List runs, or show one run in detail (`vmt runs show ID`).",
    no_args_is_help=False,
    invoke_without_command=True,
)


@runs_app.callback()
def list_runs(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", "-n", help="How many of the latest runs."),
    orchestrator: str | None = typer.Option(None, "--orchestrator", help=ORCHESTRATOR_HELP),
) -> None:
    """List the latest runs."""
    if ctx.invoked_subcommand is not None:
        return
    from vmt.cli.console import console
    from vmt.cli.run_views import runs_table
    from vmt.config import load_settings
    from vmt.pipeline.store import RunStore

    settings = load_settings()
    if orchestrator_of(settings, orchestrator) == "vertex-pipelines":
        from vmt.cli.pipeline import list_pipeline_runs

        list_pipeline_runs(settings, limit=limit)
        return
    store = RunStore.for_settings(settings)
    runs = store.list_runs(limit=limit)
    if not runs:
        console.print(f"no runs in {store.db_path}")
        return
    console.print(runs_table(runs))


@runs_app.command("show")
def show(
    run_id: str = typer.Argument(..., help="The run to show."),
    events: int = typer.Option(40, "--events", help="How many of the latest events."),
    rejections: int = typer.Option(10, "--rejections", help="How many rejected rows to list."),
    orchestrator: str | None = typer.Option(None, "--orchestrator", help=ORCHESTRATOR_HELP),
) -> None:
    """Stages, timings, handles, errors, metrics and rejected rows of one run."""
    from vmt.cli.console import console
    from vmt.cli.run_views import show_run
    from vmt.config import load_settings
    from vmt.pipeline.store import RunStore

    settings = load_settings()
    if orchestrator_of(settings, orchestrator) == "vertex-pipelines":
        from vmt.cli.pipeline import show_pipeline_run

        show_pipeline_run(settings, run_id)
        return
    store = RunStore.for_settings(settings)
    for renderable in show_run(store, run_id, events=events, rejections=rejections):
        console.print(renderable)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
