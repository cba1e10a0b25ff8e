"""Reusing a run's trained model on new rows (``vmt predict``): model-assisted labelling.

The new export is parsed like a run's (every split, rows with or without boxes), made usable by
the run's own trainer, and predicted on; the result is a Labelbox prediction NDJSON. Work files
go to ``<run folder>/predict/<timestamp>/``; the run itself is not changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from vmt.errors import InputError
from vmt.pipeline.artifacts import SampleFile
from vmt.pipeline.context import DetachedRunContext, RunObserver
from vmt.pipeline.protocols import MODEL_HANDLE, Trainer
from vmt.pipeline.stages import predict_rows, prepare_rows
from vmt.pipeline.store import RunStore


@dataclass(frozen=True, slots=True)
class ExportPredictions:
    """What ``predict_export`` wrote and counted."""

    output: Path
    workdir: Path
    rows: int
    predicted_rows: int
    detections: int
    rejected: int
    rejections_by_reason: dict[str, int]


def predict_export(
    store: RunStore,
    run_id: str,
    *,
    export: Path,
    output: Path,
    trainer: Trainer,
    locate_image: Callable[[str], str],
    observer: RunObserver | None = None,
) -> ExportPredictions:
    """Predict with run ``run_id``'s model on every row of ``export``; write ``output``.

    ``trainer`` is the run's trainer, built by the caller from ``run.config.trainer``;
    ``locate_image`` says where a row's image is (the export file source's)."""
    from vmt.formats.labelbox_export import ExportOptions

    run = store.get_run(run_id)
    handles = store.handles(run_id)
    model = handles.get(MODEL_HANDLE)
    if model is None:
        raise InputError(
            f"run {run_id} has no trained model yet (it is {run.state.value}); "
            f"finish it with `vmt resume {run_id}` first"
        )
    if not export.is_file():
        raise InputError(f"export file not found: {export}")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    workdir = store.run_dir(run_id) / "predict" / stamp
    ctx = DetachedRunContext(run_id, workdir, handles, observer=observer)
    counts = prepare_rows(
        trainer,
        ctx,
        export=export,
        options=ExportOptions(require_dimensions=False, require_boxes=False, keep_unassigned=True),
        locate_image=locate_image,
        samples_out=workdir / "samples.jsonl",
        rejections_out=workdir / "rejections.jsonl",
    )
    if counts.samples == 0:
        reasons = counts.reasons_text()
        raise InputError(
            f"no usable rows in {export}: {counts.rows} rows" + (f" ({reasons})" if reasons else "")
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    predicted = predict_rows(
        trainer,
        ctx,
        model=model,
        samples=SampleFile(workdir / "samples.jsonl"),
        predictions_out=workdir / "predictions.jsonl",
        labelbox_out=output,
        uuid_scope=f"{run_id}/predict/{stamp}",
    )
    return ExportPredictions(
        output=output,
        workdir=workdir,
        rows=counts.rows,
        predicted_rows=predicted.predicted_rows,
        detections=predicted.detections,
        rejected=counts.rejected,
        rejections_by_reason=counts.rejections_by_reason,
    )
