"""``vmt publish``: load predictions made elsewhere (and per-row metrics) into a model run."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("publish")
    def publish_command(
        model_run_id: str = typer.Option(..., "--model-run", help="The Labelbox model run."),
        predictions: Path = typer.Option(
            ...,
            "--predictions",
            help="Labelbox prediction NDJSON, Vertex batch output (file or folder), or COCO "
            "results.",
        ),
        ground_truth: Path | None = typer.Option(
            None,
            "--ground-truth",
            help="Labelbox export or COCO JSON: matches images to data rows and adds per-row "
            "metrics.",
        ),
        pred_format: str | None = typer.Option(
            None, "--pred-format", help="labelbox | vertex | coco (default: detected)."
        ),
    ) -> None:
        """Load past inference into a Labelbox model run, with confidence (idempotent)."""
        from vmt.backends.labelbox.publish_predictions import publish_predictions
        from vmt.cli.console import console, err_console
        from vmt.cli.run_display import RichRunDisplay
        from vmt.config import load_settings

        with RichRunDisplay() as display:
            result = publish_predictions(
                load_settings(),
                model_run_id=model_run_id,
                predictions=predictions,
                ground_truth=ground_truth,
                pred_format=pred_format,
                observer=display,
            )
        s = result.summary
        console.print(
            f"model run {model_run_id}: {result.predictions} predictions on "
            f"{result.predicted_rows} data rows in {s.get('labelbox_predictions_imports', 0)} "
            f"imports; {result.rows_added_to_run} data rows added to the run; "
            f"{s.get('labelbox_predictions_failed_rows', 0)} rows rejected by Labelbox"
            + (
                f"; {s.get('labelbox_metrics_rows', 0)} per-row metric rows"
                if "labelbox_metrics_rows" in s
                else ""
            ),
            highlight=False,
        )
        if s.get("labelbox_classes_left_out"):
            err_console.print(
                "[yellow]note:[/] classes missing from the model's ontology were left out: "
                + str(s["labelbox_classes_left_out"]),
                highlight=False,
            )
        if result.ignored:
            err_console.print(
                f"[yellow]note:[/] {result.ignored} prediction lines could not be used; see "
                f"{result.workdir / 'ignored.ndjson'}",
                highlight=False,
            )
