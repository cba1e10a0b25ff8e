"""``vmt select``: rank a pool for labelling (and optionally send the top rows to a project)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vmt.selection.names import STRATEGIES

if TYPE_CHECKING:
    from vmt.pool.select import SelectResult
    from vmt.selection.ranking import SelectionOptions


def register(app: typer.Typer) -> None:
    @app.command("select")
    def select_command(
        pool: Path = typer.Option(..., "--pool", help="Labelbox export of the pool's rows."),
        strategy: str = typer.Option(
            "least_confidence", "--strategy", "-s", help=f"One of: {', '.join(STRATEGIES)}."
        ),
        budget: int | None = typer.Option(
            None, "--budget", "-n", help="How many rows to choose (default: rank them all)."
        ),
        output: Path = typer.Option(..., "--output", "-o", help="Where to write ranking.csv."),
        run_id: str | None = typer.Option(
            None, "--run", help="A finished run: its model predicts on the pool (kept, reused)."
        ),
        predictions: Path | None = typer.Option(
            None,
            "--predictions",
            help="Predictions on the pool made elsewhere (Labelbox NDJSON or Vertex output).",
        ),
        threshold: float | None = typer.Option(
            None,
            "--threshold",
            help="Decision threshold for margin (default: the run's F1-optimal confidence; "
            "0.5 with --predictions).",
        ),
        training: Path | None = typer.Option(
            None, "--training", help="With --predictions: the training export (rare_class)."
        ),
        seed: int = typer.Option(0, "--seed", help="Seed of the random strategy."),
        base: str = typer.Option(
            "least_confidence", "--base", help="The uncertainty strategy that diverse thins."
        ),
        images_dir: Path | None = typer.Option(
            None, "--images-dir", help="Folder that relative row_data paths are relative to."
        ),
    ) -> None:
        """Rank a pool for labelling: data row id, global key, score, rank and the reason."""
        from vmt.cli.console import console, err_console
        from vmt.errors import InputError
        from vmt.pool.select import select_from_file, write_ranking_csv
        from vmt.selection.ranking import SelectionOptions

        if (run_id is None) == (predictions is None):
            raise InputError("give exactly one of --run RUN or --predictions FILE")
        options = SelectionOptions(
            threshold=threshold if threshold is not None else 0.5, seed=seed, base=base
        )
        result: SelectResult
        if predictions is not None:
            result = select_from_file(
                predictions=predictions,
                pool=pool,
                strategy=strategy,
                budget=budget,
                options=options,
                training=training,
            )
        else:
            assert run_id is not None
            result = _select_from_run(
                run_id, pool, strategy, budget, options, threshold, images_dir
            )
        write_ranking_csv(result.ranking, output)
        for note in result.ranking.notes:
            err_console.print(f"[yellow]note:[/] {note}", highlight=False)
        console.print(
            f"{len(result.ranking.rows)} of {result.ranking.pool_rows} pool rows ranked by "
            f"{strategy} (threshold {result.threshold:.2f}, {result.threshold_source}) -> {output}",
            highlight=False,
        )


def _select_from_run(
    run_id: str,
    pool: Path,
    strategy: str,
    budget: int | None,
    options: SelectionOptions,
    threshold: float | None,
    images_dir: Path | None,
) -> SelectResult:
    from vmt.backends.factory import build_trainer
    from vmt.cli.run_display import RichRunDisplay
    from vmt.config import load_settings
    from vmt.pipeline.store import RunStore
    from vmt.pool.select import select_from_run

    settings = load_settings()
    store = RunStore.for_settings(settings)
    trainer = build_trainer(store.get_run(run_id).config.trainer, settings)
    with RichRunDisplay() as display:
        return select_from_run(
            store,
            run_id,
            pool=pool,
            trainer=trainer,
            strategy=strategy,
            budget=budget,
            options=options,
            threshold=threshold,
            image_base=images_dir.resolve() if images_dir else None,
            observer=display,
        )
