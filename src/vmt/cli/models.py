import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def models(
        as_json: bool = typer.Option(False, "--json", help="Print the GET /models body."),
    ) -> None:
        """List the model types offered to Labelbox's "Train model" menu (every registered
        trainer's)."""
        import json

        from vmt.model_types import model_types, models_response

        if as_json:
            typer.echo(json.dumps(models_response(), indent=2))
            return
        offered = model_types()
        width = max(len(name) for name in offered)
        trainer_width = max(len(model.trainer) for model in offered.values())
        for model in offered.values():
            typer.echo(
                f"{model.value:<{width}}  {model.trainer:<{trainer_width}}  {model.description}"
            )
