import typer

from vmt.cli.pipeline import ORCHESTRATOR_HELP, orchestrator_of


def register(app: typer.Typer) -> None:
    @app.command("cancel")
    def cancel(
        run_id: str = typer.Argument(..., help="The run to cancel."),
        orchestrator: str | None = typer.Option(None, "--orchestrator", help=ORCHESTRATOR_HELP),
    ) -> None:
        """Cancel a run (and its training job); a process advancing it stops shortly."""
        from vmt.backends.factory import build_backends
        from vmt.cli.console import console
        from vmt.config import load_settings
        from vmt.pipeline.runner import Runner
        from vmt.pipeline.store import RunState

        settings = load_settings()
        if orchestrator_of(settings, orchestrator) == "vertex-pipelines":
            from vmt.cli.pipeline import cancel_pipeline_run

            cancel_pipeline_run(settings, run_id)
            return
        record = Runner(settings, backends_factory=build_backends).cancel(run_id)
        if record.state is RunState.CANCELLED:
            console.print(f"run {run_id} cancelled")
        else:
            holder = record.lease.holder.describe() if record.lease else "the advancing process"
            console.print(f"run {run_id}: cancel requested; {holder} stops at its next check")
