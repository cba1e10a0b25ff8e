"""Loading predictions made elsewhere into a Labelbox model run ("load historical inference").

Any format ``vmt evaluate`` reads: Labelbox prediction NDJSON, Vertex batch output (file or
folder), COCO results. Vertex and COCO name images, not data rows: they need the ground truth
(a Labelbox export, or COCO JSON for COCO results) to find the data rows; with it, the per-row
metrics are computed (``vmt.evaluation``) and uploaded too.

Steps: rows the model run lacks are added with ``model_run.upsert_data_rows`` (in parts of at most
``UPSERT_ROWS``), then the rows go up through ``LabelboxSink.publish``: chunked, idempotent
imports whose names derive from a digest of the model run and the input files, predicted
classes missing from the model's ontology reported and left out, per-row errors collected. The
work folder is ``<state dir>/publish/<publish id>/``, so running the command again after a crash
uploads only what is missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from vmt.backends.labelbox.connection import LabelboxConnection
from vmt.backends.labelbox.sink import PUBLISH_SUMMARY_HANDLE, LabelboxSink
from vmt.config import Settings
from vmt.domain import Prediction, Rejection
from vmt.durable_files import atomic_writer
from vmt.errors import InputError
from vmt.pipeline.context import DetachedRunContext, RunObserver
from vmt.pipeline.stages import write_labelbox_predictions

UPSERT_ROWS = 100_000


@dataclass(frozen=True)
class PublishResult:
    publish_id: str
    workdir: Path
    predicted_rows: int
    predictions: int
    rows_added_to_run: int
    ignored: int
    """Prediction lines that could not be used (see ``ignored.ndjson`` in the work folder)."""
    summary: dict[str, Any]
    """What the sink uploaded (rows, imports, failed rows, classes left out)."""


def publish_id(model_run_id: str, *paths: Path | None) -> str:
    """A digest of the model run id and the input files' bytes."""
    digest = hashlib.sha256(model_run_id.encode())
    for path in paths:
        if path is None:
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(file.name.encode())
            with file.open("rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
    return "publish-" + digest.hexdigest()[:12]


def _read(
    predictions: Path, ground_truth: Path | None, pred_format: str | None
) -> tuple[list[Prediction], list[Rejection], list[dict[str, Any]]]:
    """Predictions (one per data row, by data row id), what was ignored, and metric rows."""
    if ground_truth is None:
        from vmt.formats import detect_format, labelbox_predictions

        fmt = pred_format or detect_format.prediction_format(predictions)
        if fmt != "labelbox":
            raise InputError(
                f"{fmt} predictions name images, not data rows: give --ground-truth (the "
                "Labelbox export, or COCO JSON for COCO results) to match them"
            )
        read = labelbox_predictions.read_predictions(predictions)
        return list(read.table), list(read.ignored), []
    from vmt.evaluation import evaluate, row_metric_rows
    from vmt.formats.evaluation_inputs import read_evaluation_files

    # Predictions on rows with no label are published, never scored (no per-row metrics).
    files = read_evaluation_files(
        ground_truth, predictions, pred_format=pred_format, splits="all", keep_unlabelled=True
    )
    table = files.predictions.table
    evaluation = evaluate(files.evaluated, table)
    metric_rows = list(row_metric_rows(evaluation, namespace=str(ground_truth)))
    return list(table), list(files.predictions.ignored), metric_rows


def publish_predictions(
    settings: Settings,
    *,
    model_run_id: str,
    predictions: Path,
    ground_truth: Path | None = None,
    pred_format: str | None = None,
    connection: LabelboxConnection | None = None,
    observer: RunObserver | None = None,
) -> PublishResult:
    """Load ``predictions`` (and, with ``ground_truth``, per-row metrics) into the model run."""
    if not predictions.exists():
        raise InputError(f"predictions not found: {predictions}")
    if ground_truth is not None and not ground_truth.exists():
        raise InputError(f"ground truth not found: {ground_truth}")
    connection = connection or LabelboxConnection(settings, model_run_id)
    pid = publish_id(model_run_id, predictions, ground_truth)
    workdir = settings.state_dir / "publish" / pid
    ctx = DetachedRunContext(pid, workdir, {}, observer=observer)
    rows, ignored, metric_rows = _read(predictions, ground_truth, pred_format)
    _write_ndjson(workdir / "ignored.ndjson", (_rejection_json(r) for r in ignored))
    if not rows:
        raise InputError(f"no usable predictions in {predictions} ({len(ignored)} ignored)")
    added = _add_missing_rows(connection, ctx, [p.data_row_id for p in rows])
    upload = workdir / "predictions.ndjson"
    count = write_labelbox_predictions(rows, upload, uuid_scope=pid)
    row_metrics = None
    if metric_rows:
        row_metrics = workdir / "row_metrics.ndjson"
        _write_ndjson(row_metrics, metric_rows)
    LabelboxSink(settings, model_run_id, connection=connection).publish(
        ctx, predictions=upload, metrics=upload, row_metrics=row_metrics, report=None
    )
    summary = orjson.loads(ctx.get_handle(PUBLISH_SUMMARY_HANDLE) or "{}")
    return PublishResult(pid, workdir, len(rows), count, added, len(ignored), summary)


def _add_missing_rows(
    connection: LabelboxConnection, ctx: DetachedRunContext, ids: list[str]
) -> int:
    model_run = connection.model_run()
    present = connection.call(
        lambda: {r.data_row().uid for r in model_run.model_run_data_rows()},
        "model run rows look-up",
    )
    missing = sorted(set(ids) - present)
    for start in range(0, len(missing), UPSERT_ROWS):
        part = missing[start : start + UPSERT_ROWS]
        connection.call(
            partial(model_run.upsert_data_rows, data_row_ids=part),
            f"adding {len(part)} data rows to the model run",
        )
    if missing:
        ctx.event("data rows added to the model run", rows=len(missing))
    return len(missing)


def _rejection_json(r: Rejection) -> dict[str, Any]:
    return {"reason": r.reason, "line": r.line, "data_row_id": r.data_row_id, "detail": r.detail}


def _write_ndjson(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with atomic_writer(path) as out:
        for row in rows:
            out.write(orjson.dumps(row) + b"\n")
