import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="Address to bind (0.0.0.0 in a container)."),
        port: int = typer.Option(
            8080, envvar="PORT", help="Port to bind (default: $PORT or 8080)."
        ),
        workers: int = typer.Option(
            1, min=1, max=64, help="Worker threads advancing runs at once (in this process)."
        ),
        insecure: bool = typer.Option(
            False, "--insecure", help="Accept unsigned webhooks when no secret is set (NOT safe)."
        ),
        orchestrator: str | None = typer.Option(
            None,
            "--orchestrator",
            help="local (a worker here advances runs; SQLite state) or vertex-pipelines "
            "(stateless: the webhook submits a Vertex AI pipeline job); default VMT_ORCHESTRATOR.",
        ),
    ) -> None:
        """Serve Labelbox's "Train model" webhooks, the runs API and the run worker."""
        from vmt.cli.pipeline import orchestrator_of
        from vmt.config import load_settings
        from vmt.service.serve import serve_forever

        settings = load_settings()
        serve_forever(
            settings,
            host=host,
            port=port,
            workers=workers,
            insecure=insecure,
            orchestrator=orchestrator_of(settings, orchestrator),
        )
