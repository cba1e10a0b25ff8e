from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out: Path = typer.Option(Path("demo-out"), "--out", help="Folder for dataset and results."),
        images: int | None = typer.Option(
            None,
            "--images",
            min=10,
            help="Synthetic images to generate (default: vmt.synthetic.DEFAULT_IMAGES, 600).",
        ),
        train_seconds: float | None = typer.Option(
            None,
            "--train-seconds",
            help="Training time budget in seconds (default: VMT_TRAIN_SECONDS, else 270).",
        ),
        seed: int | None = typer.Option(None, "--seed", help="Random seed (default: VMT_SEED)."),
    ) -> None:
        """Generate a synthetic dataset and run the whole loop on it with the local trainer."""
        from vmt.backends.factory import build_backends
        from vmt.cli.run_display import RichRunDisplay, finish_run
        from vmt.config import load_settings
        from vmt.pipeline.run_config import files_run_config
        from vmt.pipeline.runner import Runner
        from vmt.synthetic import DEFAULT_IMAGES, generate_dataset

        settings = load_settings()
        images = DEFAULT_IMAGES if images is None else images
        seed_value = settings.seed if seed is None else seed
        out = out.resolve()
        with RichRunDisplay() as display:
            display.note(f"generating {images} synthetic images in {out / 'dataset'}")
            export = generate_dataset(out / "dataset", images=images, seed=seed_value)
            config = files_run_config(
                export=str(export),
                out_dir=str(out / "results"),
                trainer="local",
                trainer_options={
                    "train_seconds": settings.train_seconds
                    if train_seconds is None
                    else train_seconds,
                    "seed": seed_value,
                },
            )
            runner = Runner(settings, backends_factory=build_backends, observer=display)
            run_id = runner.create_run(config)
            display.note(f"run {run_id} (resume with: vmt resume {run_id})")
            record = runner.advance(run_id)
        finish_run(runner.store, record)
