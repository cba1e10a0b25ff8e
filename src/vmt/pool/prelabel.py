"""Pre-labels of a pool from a finished run: its model's boxes at the run's F1-optimal
confidence (or a given one), as MAL NDJSON rows (no confidence), kept in the pool's folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from vmt.durable_files import atomic_writer, copy_atomic
from vmt.errors import InputError
from vmt.formats.labelbox_mal import mal_rows
from vmt.formats.labelbox_predictions import deterministic_uuids
from vmt.pipeline import artifacts
from vmt.pipeline.context import RunObserver
from vmt.pipeline.protocols import Trainer
from vmt.pipeline.store import RunStore
from vmt.pool import pool_inputs
from vmt.pool.pool_predictions import PoolPredictions, predict_pool


@dataclass(frozen=True)
class PrelabelFile:
    path: Path
    """MAL NDJSON: one box per line."""
    rows: int
    data_rows: int
    """Data rows with at least one pre-label."""
    threshold: float
    threshold_source: str
    """``auto`` (the run's F1-optimal), ``given`` or ``default``."""
    pool: PoolPredictions


def parse_confidence(text: str) -> float | None:
    """``auto`` -> None; else a number in [0, 1] (``InputError`` otherwise)."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--confidence: expected 'auto' or a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise InputError(f"--confidence must be in [0, 1], got {value}")
    return value


def prelabel_pool(
    store: RunStore,
    run_id: str,
    *,
    pool: Path,
    trainer: Trainer,
    confidence: float | None = None,
    image_base: Path | None = None,
    observer: RunObserver | None = None,
) -> PrelabelFile:
    """Predict (or reuse) the pool and write its pre-labels at ``confidence`` (None: the run's
    F1-optimal confidence) to ``<pool folder>/prelabels-<confidence>.ndjson``."""
    predicted = predict_pool(
        store, run_id, pool=pool, trainer=trainer, image_base=image_base, observer=observer
    )
    threshold, source = (
        (confidence, "given")
        if confidence is not None
        else pool_inputs.run_threshold(store.run_dir(run_id))
    )
    path = predicted.folder / f"prelabels-{threshold:.4f}.ndjson"
    uuid_for = deterministic_uuids(f"{run_id}/prelabel/{predicted.folder.name}")
    rows = 0
    data_rows: set[str] = set()
    with atomic_writer(path) as out:
        for row in mal_rows(
            artifacts.read_predictions(predicted.predictions),
            threshold=threshold,
            uuid_for=uuid_for,
        ):
            out.write(orjson.dumps(row) + b"\n")
            rows += 1
            data_rows.add(row["dataRow"]["id"])
    return PrelabelFile(path, rows, len(data_rows), threshold, source, predicted)


def copy_to(prelabels: PrelabelFile, output: Path) -> None:
    """Write the pre-label file to ``output`` (a file name)."""
    if output.is_dir():
        raise InputError(f"{output} is a folder: give a file name for the pre-labels")
    copy_atomic(prelabels.path, output)
