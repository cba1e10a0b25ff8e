import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def version() -> None:
        """Print the installed version."""
        from vmt import __version__

        typer.echo(__version__)
