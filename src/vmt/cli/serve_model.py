import typer


def register(app: typer.Typer) -> None:
    @app.command("serve-model")
    def serve_model(
        host: str | None = typer.Option(
            None, help="Address to bind (default VMT_VERTEX_CUSTOM_SERVE_HOST: 0.0.0.0)."
        ),
    ) -> None:
        """Serve a trained model under Vertex AI's custom-container contract (AIP_HTTP_PORT,
        AIP_HEALTH_ROUTE, AIP_PREDICT_ROUTE, AIP_STORAGE_URI): what Vertex runs in our image
        for batch prediction."""
        import os

        from vmt.backends.vertex_custom.serving import ServingEnv
        from vmt.backends.vertex_custom.serving import serve_model as serve
        from vmt.config import load_settings

        settings = load_settings()
        serve(
            settings,
            ServingEnv.from_env(os.environ),
            host=host or settings.vertex_custom_serve_host,
        )
