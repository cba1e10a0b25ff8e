"""``vmt select``: rank a pool for labelling (and optionally send the top rows to a project)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vmt.pool.pool_spec import POOL_HELP
from vmt.selection.strategies import BATCH_NAME_HELP, OPTION_HELP, strategies_help

if TYPE_CHECKING:
    from vmt.pool.pool_spec import PoolSpec
    from vmt.pool.select import SelectResult
    from vmt.selection.ranking import SelectionOptions


def register(app: typer.Typer) -> None:
    @app.command("select")
    def select_command(
        pool: str = typer.Option(..., "--pool", help=POOL_HELP),
        strategy: str = typer.Option(
            "least_confidence", "--strategy", "-s", help=f"One of: {strategies_help()}."
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
        threshold: float | None = typer.Option(None, "--threshold", help=OPTION_HELP["threshold"]),
        window: float | None = typer.Option(None, "--window", help=OPTION_HELP["window"]),
        score_floor: float | None = typer.Option(
            None, "--score-floor", help=OPTION_HELP["score_floor"]
        ),
        candidate_factor: int | None = typer.Option(
            None, "--candidate-factor", help=OPTION_HELP["candidate_factor"]
        ),
        training: Path | None = typer.Option(
            None, "--training", help="With --predictions: the training export (rare_class)."
        ),
        seed: int = typer.Option(0, "--seed", help=OPTION_HELP["seed"]),
        base: str = typer.Option("least_confidence", "--base", help=OPTION_HELP["base"]),
        images_dir: Path | None = typer.Option(
            None, "--images-dir", help="Folder that relative row_data paths are relative to."
        ),
        project_id: str | None = typer.Option(
            None, "--project", help="Send the chosen rows to this Labelbox project as batch(es)."
        ),
        batch: str | None = typer.Option(None, "--batch", help=BATCH_NAME_HELP),
        priority: int = typer.Option(5, "--priority", help="Batch priority, 1 (highest) to 5."),
        prelabel: bool = typer.Option(
            False, "--prelabel", help="With --project and --run: also import their pre-labels."
        ),
    ) -> None:
        """Rank a pool for labelling: data row id, global key, score, rank and the reason."""
        from vmt.cli.console import console, err_console
        from vmt.errors import InputError
        from vmt.pool.pool_spec import PoolSpec
        from vmt.pool.select import write_ranking_csv
        from vmt.selection.strategies import selection_options, strategy_spec

        if (run_id is None) == (predictions is None):
            raise InputError("give exactly one of --run RUN or --predictions FILE")
        strategy_spec(strategy)
        spec = PoolSpec.parse(pool)
        spec.check_batch_target(project_id)
        options = selection_options(
            threshold=threshold,
            window=window,
            score_floor=score_floor,
            seed=seed,
            base=base,
            candidate_factor=candidate_factor,
        )
        result: SelectResult
        if predictions is not None:
            result, pool_path = _select_from_file(
                predictions, spec, project_id, strategy, budget, options, training
            )
        else:
            assert run_id is not None
            result, pool_path = _select_from_run(
                run_id, spec, project_id, strategy, budget, options, threshold, images_dir
            )
        write_ranking_csv(result.ranking, output)
        for note in result.ranking.notes:
            err_console.print(f"[yellow]note:[/] {note}", highlight=False)
        console.print(
            f"{len(result.ranking.rows)} of {result.ranking.pool_rows} pool rows ranked by "
            f"{strategy} (threshold {result.threshold:.2f}, {result.threshold_source}) -> {output}",
            highlight=False,
        )
        if project_id is not None:
            if prelabel and run_id is None:
                raise InputError("--prelabel needs --run (the pre-labels are its model's boxes)")
            _send(project_id, result, batch, priority, run_id if prelabel else None, pool_path)


def _select_from_file(
    predictions: Path,
    spec: PoolSpec,
    project_id: str | None,
    strategy: str,
    budget: int | None,
    options: SelectionOptions,
    training: Path | None,
) -> tuple[SelectResult, Path]:
    from vmt.cli.pool_option import pool_file
    from vmt.cli.run_display import RichRunDisplay
    from vmt.config import load_settings
    from vmt.pool.select import select_from_file

    settings = load_settings()
    with RichRunDisplay() as display:
        pool = pool_file(
            spec,
            settings=settings,
            base=settings.state_dir,
            run_id=None,
            project_id=project_id,
            observer=display,
        )
    result = select_from_file(
        predictions=predictions,
        pool=pool,
        strategy=strategy,
        budget=budget,
        options=options,
        training=training,
    )
    return result, pool


def _select_from_run(
    run_id: str,
    spec: PoolSpec,
    project_id: str | None,
    strategy: str,
    budget: int | None,
    options: SelectionOptions,
    threshold: float | None,
    images_dir: Path | None,
) -> tuple[SelectResult, Path]:
    from vmt.cli.pool_option import PredictingRun
    from vmt.cli.run_display import RichRunDisplay
    from vmt.config import load_settings
    from vmt.pool.select import select_from_run

    run = PredictingRun.load(run_id, load_settings())
    with RichRunDisplay() as display:
        pool = run.pool_file(spec, project_id=project_id, observer=display)
        result = select_from_run(
            run.store,
            run_id,
            pool=pool,
            trainer=run.trainer,
            strategy=strategy,
            budget=budget,
            options=options,
            threshold=threshold,
            image_base=images_dir.resolve() if images_dir else None,
            observer=display,
        )
    return result, pool


def _send(
    project_id: str,
    result: SelectResult,
    batch: str | None,
    priority: int,
    prelabel_run: str | None,
    pool: Path,
) -> None:
    from vmt.backends.labelbox.labelling_loop import prelabel_project, send_to_project
    from vmt.backends.labelbox.project import LabelboxProject
    from vmt.cli.labelling_report import print_batch_summary, print_prelabel_summary
    from vmt.cli.pool_option import PredictingRun
    from vmt.config import load_settings
    from vmt.pool.prelabel import prelabel_pool
    from vmt.selection.strategies import batch_name

    settings = load_settings()
    project = LabelboxProject(settings, project_id)
    ids = [row.data_row_id for row in result.ranking.rows]
    batch = batch or batch_name(result.ranking.strategy, ids)
    print_batch_summary(
        project_id, send_to_project(project, data_row_ids=ids, batch=batch, priority=priority)
    )
    if prelabel_run is not None:
        run = PredictingRun.load(prelabel_run, settings)
        prelabels = prelabel_pool(run.store, prelabel_run, pool=pool, trainer=run.trainer)
        imported = prelabel_project(
            project, run_id=prelabel_run, prelabels=prelabels, pool_export=pool, only=ids
        )
        print_prelabel_summary(project_id, imported.summary)
