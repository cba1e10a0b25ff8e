"""A run's evaluated rows, as the rows pages read them: the evaluation redone from the run's
files (exactly the evaluate stage's inputs) at one confidence, kept as a ``RowTable`` file in
the run folder (``rows/table-c<confidence>-<metrics.json mtime>.sqlite``: a run evaluated again
gets a new one) and opened once per process.

The first request at a confidence builds its table (seconds for 200,000 rows); every later one
is a few indexed SQLite queries.
"""

from __future__ import annotations

import threading
from pathlib import Path

import orjson

from vmt.domain import Prediction, Sample
from vmt.errors import InputError
from vmt.evaluation.confidence import SWEEP_THRESHOLDS
from vmt.pipeline import artifacts
from vmt.pipeline.protocols import Stage
from vmt.pipeline.results import PredictResult
from vmt.pipeline.stages import EVALUATED_SPLITS
from vmt.pipeline.store import RunStore
from vmt.service.dashboard.row_images import RemoteImages
from vmt.service.dashboard.row_table import RowTable, write_row_table

ROWS_DIR = "rows"


class NoRowsError(InputError):
    """The run has no evaluated rows to show (not evaluated yet, or its files are gone)."""


def run_confidence(run_dir: Path) -> float:
    """The confidence the run's evaluation chose (``metrics.json``). Raises ``NoRowsError``."""
    path = run_dir / artifacts.METRICS_FILE
    if not path.is_file():
        raise NoRowsError("this run has no evaluation yet")
    value = orjson.loads(path.read_bytes()).get("confidence_threshold")
    if not isinstance(value, int | float):
        raise NoRowsError("this run's metrics.json has no confidence threshold")
    return float(value)


def snap_confidence(value: float) -> float:
    """``value`` rounded to the confidence sweep's grid (0.00, 0.05, ..., 1.00)."""
    if not 0.0 <= value <= 1.0:
        raise InputError(f"confidence must be in [0, 1], got {value}")
    return float(SWEEP_THRESHOLDS[int(abs(SWEEP_THRESHOLDS - value).argmin())])


def _failed_rows(store: RunStore, run_id: str) -> set[str]:
    predicted = next((s for s in store.stages(run_id) if s.stage is Stage.PREDICT), None)
    if predicted is None or not predicted.outputs:
        return set()
    return {f.data_row_id for f in PredictResult.from_json(predicted.outputs).failures}


def _evaluated_inputs(store: RunStore, run_id: str) -> tuple[list[Sample], list[Prediction]]:
    """The rows and predictions the run's evaluate stage scored: the export's ground truth of
    the evaluated splits (every row when the samples have none of them) minus the rows the
    trainer could not predict."""
    from vmt.formats.evaluation_inputs import evaluation_ground_truth

    run_dir = store.run_dir(run_id)
    samples_path = run_dir / artifacts.SAMPLES_FILE
    predictions_path = run_dir / artifacts.PREDICTIONS_FILE
    if not samples_path.is_file() or not predictions_path.is_file():
        raise NoRowsError("this run's samples or predictions are not in its folder")
    samples = artifacts.SampleFile(samples_path)
    export = run_dir / artifacts.EXPORT_FILE
    predictions = artifacts.read_predictions(predictions_path)
    if export.is_file():
        truth = evaluation_ground_truth(export, samples.only(*EVALUATED_SPLITS), EVALUATED_SPLITS)
        rows = truth.rows
        scored, _ = truth.leave_out_unlabelled(predictions)
    else:
        rows = list(samples.only(*EVALUATED_SPLITS)) or list(samples)
        scored = list(predictions)
    failed = _failed_rows(store, run_id)
    return [s for s in rows if s.data_row_id not in failed], scored


class RunRows:
    """Opens (building when missing) the row table of each (run, confidence)."""

    def __init__(self, store: RunStore, remote: RemoteImages | None = None) -> None:
        self._store = store
        self.remote = remote
        """Reads the runs' own Cloud Storage images (None: only local images are shown)."""
        self._open: dict[tuple[str, float, int], RowTable] = {}
        self._building: dict[tuple[str, float, int], threading.Lock] = {}
        self._lock = threading.Lock()

    def table(self, run_id: str, confidence: float | None = None) -> RowTable:
        """The table at ``confidence`` (None, or the run's own to 2 decimals: the run's own;
        else snapped to the sweep grid).
        A table being built blocks only the requests for that table.
        Raises ``UnknownRunError``, ``NoRowsError``, ``InputError``."""
        self._store.get_run(run_id)
        run_dir = self._store.run_dir(run_id)
        own = run_confidence(run_dir)
        given = own if confidence is None or abs(confidence - own) < 0.005 else confidence
        chosen = own if given == own else snap_confidence(given)
        version = (run_dir / artifacts.METRICS_FILE).stat().st_mtime_ns
        key = (run_id, chosen, version)
        with self._lock:
            table = self._open.get(key)
            if table is not None:
                return table
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                table = self._open.get(key)
            if table is not None:
                return table
            path = run_dir / ROWS_DIR / f"table-c{chosen:.4f}-{version}.sqlite"
            if not path.is_file():
                self._build(run_id, chosen, path)
            table = RowTable(path)
            with self._lock:
                self._open[key] = table
            return table

    def _build(self, run_id: str, confidence: float, path: Path) -> None:
        from vmt.evaluation import evaluate

        rows, predictions = _evaluated_inputs(self._store, run_id)
        if not rows:
            raise NoRowsError("this run evaluated no rows")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_row_table(evaluate(rows, predictions, confidence=confidence), path)

    def close(self) -> None:
        with self._lock:
            for table in self._open.values():
                table.close()
            self._open.clear()
