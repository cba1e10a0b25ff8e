import typer


def register(app: typer.Typer) -> None:
    @app.command("cancel")
    def cancel(run_id: str = typer.Argument(..., help="The run to cancel.")) -> None:
        """Cancel a run (and its training job); a process advancing it stops shortly."""
        from vmt.backends.factory import build_backends
        from vmt.cli.console import console
        from vmt.config import load_settings
        from vmt.pipeline.runner import Runner
        from vmt.pipeline.store import RunState

        record = Runner(load_settings(), backends_factory=build_backends).cancel(run_id)
        if record.state is RunState.CANCELLED:
            console.print(f"run {run_id} cancelled")
        else:
            holder = record.lease.holder.describe() if record.lease else "the advancing process"
            console.print(f"run {run_id}: cancel requested; {holder} stops at its next check")
