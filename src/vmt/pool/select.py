"""``vmt select``: rank a pool for labelling, from a finished run or from a predictions file.

From a run, the pool is predicted by the run's model (or its kept predictions reused), the
decision threshold is the run's F1-optimal confidence, ``rare_class`` counts the run's training
boxes and ``diverse`` uses the detector's image embeddings (the run's training images count as
already chosen). From a predictions file, the threshold is ``--threshold`` (0.5 by default) and
``rare_class`` needs the training export.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from vmt.detection_table import DetectionTable
from vmt.durable_files import atomic_path
from vmt.errors import InputError
from vmt.pipeline import artifacts
from vmt.pipeline.context import RunObserver
from vmt.pipeline.protocols import Trainer
from vmt.pipeline.store import RunStore
from vmt.pool import pool_inputs
from vmt.pool.pool_predictions import PoolPredictions, predict_pool, training_embeddings
from vmt.selection.ranking import PoolEmbeddings, Ranking, SelectionOptions, rank_pool
from vmt.selection.strategies import strategy_spec

RANKING_COLUMNS = ("rank", "data_row_id", "global_key", "score", "reason")


@dataclass(frozen=True)
class SelectResult:
    ranking: Ranking
    threshold: float
    threshold_source: str
    pool: PoolPredictions | None = None
    """The kept pool predictions (selection from a run only)."""


def select_from_run(
    store: RunStore,
    run_id: str,
    *,
    pool: Path,
    trainer: Trainer,
    strategy: str,
    budget: int | None,
    options: SelectionOptions,
    threshold: float | None = None,
    image_base: Path | None = None,
    observer: RunObserver | None = None,
) -> SelectResult:
    """Rank ``pool`` with run ``run_id``'s model. ``threshold`` None: the run's own. The inputs
    the strategy needs (``StrategySpec.needs``) come from the run: its training boxes per class,
    its detector's embeddings of the pool and of its training images."""
    predicted = predict_pool(
        store, run_id, pool=pool, trainer=trainer, image_base=image_base, observer=observer
    )
    run_dir = store.run_dir(run_id)
    chosen, source = (
        (threshold, "given") if threshold is not None else pool_inputs.run_threshold(run_dir)
    )
    options = replace(options, threshold=chosen)
    needs = strategy_spec(strategy).needs
    if options.training_boxes is None and "training_boxes" in needs:
        options = replace(options, training_boxes=pool_inputs.run_training_box_counts(run_dir))
    samples = list(artifacts.SampleFile(predicted.samples))
    table = DetectionTable.from_predictions(artifacts.read_predictions(predicted.predictions))
    embeddings = None
    if "embeddings" in needs:
        vectors = predicted.read_embeddings()
        if vectors is not None:
            labelled = training_embeddings(store, run_id, trainer=trainer, observer=observer)
            embeddings = PoolEmbeddings(
                pool=vectors.astype(np.float64),
                labelled=labelled.astype(np.float64) if labelled is not None else None,
            )
    ranking = rank_pool(
        table,
        strategy=strategy,
        budget=budget,
        options=options,
        global_keys={s.data_row_id: s.global_key for s in samples if s.global_key},
        embeddings=embeddings,
    )
    return SelectResult(ranking, chosen, source, predicted)


def select_from_file(
    *,
    predictions: Path,
    pool: Path,
    strategy: str,
    budget: int | None,
    options: SelectionOptions,
    training: Path | None = None,
    prediction_format: str | None = None,
) -> SelectResult:
    """Rank ``pool`` (an export) by predictions made elsewhere. ``diverse`` has no embeddings
    here and falls back to its uncertainty strategy (the ranking's notes say so)."""
    rows = pool_inputs.read_pool_rows(pool)
    table, _read = pool_inputs.read_prediction_file(predictions, rows, fmt=prediction_format)
    if training is not None and options.training_boxes is None:
        counts = pool_inputs.training_box_counts(pool_inputs.read_pool_rows(training).samples)
        options = replace(options, training_boxes=counts)
    ranking = rank_pool(
        table, strategy=strategy, budget=budget, options=options, global_keys=rows.global_keys
    )
    return SelectResult(ranking, options.threshold, "given")


def write_ranking_csv(ranking: Ranking, path: Path) -> None:
    """``rank,data_row_id,global_key,score,reason``, one line per ranked row (UTF-8)."""
    if path.is_dir():
        raise InputError(f"{path} is a folder: give a file name for the ranking")
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(RANKING_COLUMNS)
        for row in ranking.rows:
            writer.writerow(
                [row.rank, row.data_row_id, row.global_key or "", f"{row.score:.6f}", row.reason]
            )


def read_ranking_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a ranking CSV written by ``write_ranking_csv``."""
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
