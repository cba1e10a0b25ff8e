import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def models(
        as_json: bool = typer.Option(False, "--json", help="Print the GET /models body."),
    ) -> None:
        """List the model types offered to Labelbox's "Train model" menu."""
        import json

        from vmt.model_types import MODEL_TYPES, models_response

        if as_json:
            typer.echo(json.dumps(models_response(), indent=2))
            return
        width = max(len(name) for name in MODEL_TYPES)
        for model in MODEL_TYPES.values():
            typer.echo(f"{model.value:<{width}}  {model.trainer:<6}  {model.description}")
