from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        export: Path = typer.Option(
            ..., "--export", help="Labelbox export file (NDJSON, any form `vmt convert` reads)."
        ),
        out: Path = typer.Option(
            ..., "--out", help="Results folder (predictions, metrics, model)."
        ),
        trainer: str = typer.Option(
            "local", "--trainer", help="Training backend: local or vertex."
        ),
        images_dir: Path | None = typer.Option(
            None, "--images-dir", help="Folder that relative row_data paths are relative to."
        ),
        train_seconds: float | None = typer.Option(
            None, "--train-seconds", help="Training time budget (local trainer)."
        ),
        seed: int | None = typer.Option(None, "--seed", help="Random seed (local trainer)."),
    ) -> None:
        """Run the whole loop on an export file: prepare, train, predict, evaluate, publish."""
        from vmt.cli.run_display import RichRunDisplay, finish_run
        from vmt.config import load_settings
        from vmt.errors import InputError
        from vmt.pipeline.run_config import files_run_config
        from vmt.pipeline.runner import Runner

        if not export.is_file():
            raise InputError(f"export file not found: {export}")
        options: dict[str, object] = {}
        if train_seconds is not None:
            options["train_seconds"] = train_seconds
        if seed is not None:
            options["seed"] = seed
        config = files_run_config(
            export=str(export.resolve()),
            out_dir=str(out.resolve()),
            images_dir=str(images_dir.resolve()) if images_dir else None,
            trainer=trainer,
            trainer_options=options,
        )
        with RichRunDisplay() as display:
            runner = Runner(load_settings(), observer=display)
            run_id = runner.create_run(config)
            display.note(f"run {run_id} (resume with: vmt resume {run_id})")
            record = runner.advance(run_id)
        finish_run(runner.store, record)
