import typer


def register(app: typer.Typer) -> None:
    @app.command("resume")
    def resume(run_id: str = typer.Argument(..., help="The run to continue.")) -> None:
        """Continue a run where it stopped; finished stages are not redone."""
        from vmt.backends.factory import build_backends
        from vmt.cli.run_display import RichRunDisplay, finish_run
        from vmt.config import load_settings
        from vmt.pipeline.runner import Runner

        with RichRunDisplay() as display:
            runner = Runner(load_settings(), backends_factory=build_backends, observer=display)
            record = runner.resume(run_id)
        finish_run(runner.store, record)
