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
        from vmt.backends.factory import trained_run
        from vmt.cli.console import console
        from vmt.cli.run_display import RichRunDisplay
        from vmt.config import load_settings
        from vmt.formats.outbound_policy import OutboundRules
        from vmt.pool.export_predictions import predict_export

        settings = load_settings()
        store, trainer = trained_run(run_id, settings, outbound=OutboundRules.export_file())
        with RichRunDisplay() as display:
            result = predict_export(
                store,
                run_id,
                export=export,
                output=output,
                trainer=trainer,
                image_base=images_dir.resolve() if images_dir else None,
                observer=display,
            )
        pool = result.pool
        console.print(
            f"{pool.predicted_rows} rows predicted, {pool.detections} boxes -> {result.output}"
            + (" (kept predictions of this file reused)" if pool.reused else ""),
            highlight=False,
        )
        if pool.rejected:
            reasons = ", ".join(f"{r}: {n}" for r, n in pool.rejections_by_reason.items())
            console.print(
                f"{pool.rejected} rows left out ({reasons}); see {pool.rejections}",
                highlight=False,
            )
