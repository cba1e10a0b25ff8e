import typer


def register(app: typer.Typer) -> None:
    @app.command("ui")
    def ui(
        host: str = typer.Option("127.0.0.1", help="Address to bind (others need VMT_API_TOKEN)."),
        port: int = typer.Option(8765, help="Port to bind."),
    ) -> None:
        """Browse the local runs in a web page: runs, one run live, compare runs."""
        import uvicorn

        from vmt.cli.console import err_console
        from vmt.config import configured_secrets, load_settings
        from vmt.logs import configure_logging
        from vmt.service.dashboard.local_app import create_ui_app

        settings = load_settings()
        configure_logging(json=settings.log_json, secrets=configured_secrets(settings))
        app = create_ui_app(settings, host=host)
        err_console.print(
            f"vmt ui: http://{host}:{port}/ui/ (runs in {settings.state_dir.resolve()}; "
            "Ctrl-C stops)",
            highlight=False,
        )
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_config=None,
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips=settings.trusted_proxies,
        )
