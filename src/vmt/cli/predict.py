from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict(
        run_id: str = typer.Option(..., "--run", help="A run whose model is trained."),
        export: Path = typer.Option(..., "--export", help="Labelbox export of the rows to label."),
        output: Path = typer.Option(
            ..., "--output", "-o", help="Where to write the Labelbox prediction NDJSON."
        ),
        images_dir: Path | None = typer.Option(
            None, "--images-dir", help="Folder that relative row_data paths are relative to."
        ),
    ) -> None:
        """Predict on new rows with a trained run's model (model-assisted labelling)."""
        from vmt.backends.factory import build_trainer
        from vmt.backends.files import FileSource
        from vmt.cli.console import console
        from vmt.cli.run_display import RichRunDisplay
        from vmt.config import load_settings
        from vmt.pipeline.model_reuse import predict_export
        from vmt.pipeline.store import RunStore

        settings = load_settings()
        store = RunStore.for_settings(settings)
        source = FileSource(export.resolve(), images_dir.resolve() if images_dir else None)
        with RichRunDisplay() as display:
            result = predict_export(
                store,
                run_id,
                export=export,
                output=output,
                trainer=build_trainer(store.get_run(run_id).config.trainer, settings),
                locate_image=source.locate_image,
                observer=display,
            )
        console.print(
            f"{result.predicted_rows} rows predicted, {result.detections} boxes -> {result.output}",
            highlight=False,
        )
        if result.rejected:
            reasons = ", ".join(f"{r}: {n}" for r, n in result.rejections_by_reason.items())
            console.print(
                f"{result.rejected} rows left out ({reasons}); "
                f"see {result.workdir / 'rejections.jsonl'}",
                highlight=False,
            )
