"""``vmt predict``: a run's model on new rows, written as a Labelbox prediction NDJSON.

The rows are a pool like any other (``pool_predictions.predict_pool``): predicted once under the
pool's own identity (with Vertex, its own batch prediction job), kept in
``<run folder>/pools/<key>/`` and shared with ``vmt select`` and ``vmt prelabel``. This adds their
Labelbox upload form (with confidence); the run itself is not changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vmt.errors import InputError
from vmt.pipeline import artifacts
from vmt.pipeline.context import RunObserver
from vmt.pipeline.protocols import Trainer
from vmt.pipeline.stages import write_labelbox_predictions
from vmt.pipeline.store import RunStore
from vmt.pool.pool_predictions import PoolPredictions, predict_pool


@dataclass(frozen=True, slots=True)
class ExportPredictions:
    """What ``predict_export`` wrote (``output``) and the kept pool it came from."""

    output: Path
    upload_rows: int
    """Lines of ``output``: one box each."""
    pool: PoolPredictions


def predict_export(
    store: RunStore,
    run_id: str,
    *,
    export: Path,
    output: Path,
    trainer: Trainer,
    image_base: Path | None = None,
    observer: RunObserver | None = None,
) -> ExportPredictions:
    """Predict with run ``run_id``'s model on every row of ``export`` (or reuse the kept
    predictions of that file) and write ``output``. ``trainer`` is the run's trainer, built by
    the caller from ``run.config.trainer``; relative ``row_data`` paths are taken from
    ``image_base`` (default: the export's folder). Raises ``InputError`` when the run has no
    model, the file is missing or none of its rows is usable."""
    if not export.is_file():
        raise InputError(f"export file not found: {export}")
    predicted = predict_pool(
        store, run_id, pool=export, trainer=trainer, image_base=image_base, observer=observer
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    rows = write_labelbox_predictions(
        artifacts.read_predictions(predicted.predictions),
        output,
        uuid_scope=f"{run_id}/predict/{predicted.folder.name}",
    )
    return ExportPredictions(output, rows, predicted)
