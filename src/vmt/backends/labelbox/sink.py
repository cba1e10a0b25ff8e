"""``LabelboxSink``: report every stage on the model run and load the results back into it.

``report_status`` calls ``model_run.update_status`` with the runner's metadata (plus the run id
and, once published, what was uploaded) on every transition; on FAILED the error message is
one line of at most 255 characters. ``publish`` uploads the prediction rows and the per-row custom
metrics in idempotent chunks (see ``imports``), leaving out (and reporting) predicted classes the
model's ontology does not have, and collects per-row failures into events and
``labelbox_import_errors.ndjson`` beside the report.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from vmt.backends.labelbox.connection import LabelboxConnection
from vmt.backends.labelbox.imports import UploadSummary, count_lines, upload_rows
from vmt.backends.labelbox.sdk_errors import redact
from vmt.config import Settings
from vmt.pipeline.protocols import RunContext, RunStatus
from vmt.retry import Backoff

MAX_ERROR_MESSAGE = 255
PUBLISH_SUMMARY_HANDLE = "labelbox.publish_summary"
FAILURES_FILE = "labelbox_import_errors.ndjson"


class LabelboxSink:
    """Status and results of one Labelbox model run (implements ``Sink``)."""

    def __init__(
        self,
        settings: Settings,
        model_run_id: str,
        *,
        backoff: Backoff | None = None,
        connection: LabelboxConnection | None = None,
    ) -> None:
        self.connection = connection or LabelboxConnection(settings, model_run_id, backoff=backoff)

    def report_status(
        self,
        ctx: RunContext,
        status: RunStatus,
        *,
        metadata: Mapping[str, object],
        error: str | None = None,
    ) -> None:
        data: dict[str, Any] = {key: _json_value(value) for key, value in metadata.items()}
        data["vmt_run_id"] = ctx.run_id
        if status is RunStatus.COMPLETE:
            summary = ctx.get_handle(PUBLISH_SUMMARY_HANDLE)
            if summary:
                data.update(json.loads(summary))
        message = None
        if status is RunStatus.FAILED:
            message = error_message(error, run_id=ctx.run_id, secret=self.connection.secret)
        model_run = self.connection.model_run()
        self.connection.call(
            lambda: model_run.update_status(status.value, metadata=data, error_message=message),
            f"status update to {status.value}",
            run_id=ctx.run_id,
        )
        ctx.event("labelbox status updated", status=status.value)

    def publish(
        self,
        ctx: RunContext,
        *,
        predictions: Path,
        metrics: Path,
        row_metrics: Path | None,
        report: Path | None,
    ) -> None:
        known = self.connection.feature_schema_ids()
        left_out: Counter[str] = Counter()
        total = count_lines(predictions)
        if total == 0:  # Labelbox will show no boxes: say why in the run, not only a 0
            ctx.event("no predictions to upload: the model predicted no boxes on any row")
        summaries = [
            upload_rows(
                self.connection,
                ctx,
                kind="predictions",
                rows=_known_class_rows(predictions, known, left_out, key="name"),
                total=total,
            )
        ]
        if left_out:
            ctx.event(
                "predicted classes missing from the model's ontology were left out",
                classes=dict(left_out),
            )
        metrics_left_out: Counter[str] = Counter()
        if row_metrics is not None and row_metrics.exists():
            summaries.append(
                upload_rows(
                    self.connection,
                    ctx,
                    kind="metrics",
                    rows=_known_class_rows(row_metrics, known, metrics_left_out, key="featureName"),
                    total=count_lines(row_metrics),
                )
            )
        if metrics_left_out:
            ctx.event(
                "per-class metric rows of classes missing from the model's ontology were left out",
                classes=dict(metrics_left_out),
            )
        failures_path = (report.parent if report is not None else ctx.workdir) / FAILURES_FILE
        _concatenate([f for s in summaries for f in s.failure_files], failures_path)
        summary = _summary_metadata(summaries, left_out, failures_path)
        if metrics_left_out:
            summary["labelbox_metric_rows_left_out"] = sum(metrics_left_out.values())
        ctx.set_handle(PUBLISH_SUMMARY_HANDLE, json.dumps(summary))
        ctx.event("labelbox publish done", **summary)


def error_message(error: str | None, *, run_id: str, secret: str | None) -> str:
    """One line, at most 255 characters, never the API key."""
    text = " ".join((error or "").split()) or f"vmt run {run_id} failed; see `vmt runs {run_id}`"
    text = redact(text, secret)
    if len(text) > MAX_ERROR_MESSAGE:
        text = text[: MAX_ERROR_MESSAGE - 3] + "..."
    return text


def _known_class_rows(
    path: Path, known: Mapping[str, str], left_out: Counter[str], *, key: str
) -> Iterator[dict[str, Any]]:
    with path.open("rb") as rows:
        for line in rows:
            if not line.strip():
                continue
            row = orjson.loads(line)
            name = row.get(key)
            if isinstance(name, str) and name not in known:
                left_out[name] += 1
                continue
            yield row


def _summary_metadata(
    summaries: list[UploadSummary], left_out: Counter[str], failures: Path
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for s in summaries:
        data[f"labelbox_{s.kind}_rows"] = s.rows
        data[f"labelbox_{s.kind}_imports"] = s.chunks
        data[f"labelbox_{s.kind}_failed_rows"] = s.failed_rows
    if left_out:
        data["labelbox_classes_left_out"] = ", ".join(sorted(left_out))
        data["labelbox_predictions_left_out"] = sum(left_out.values())
    if any(s.failed_rows for s in summaries):
        data["labelbox_import_errors"] = str(failures)
    return data


def _json_value(value: object) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Path):
        return str(value)
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return str(value)


def _concatenate(parts: list[Path], dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("wb") as out:
        for part in parts:
            out.write(part.read_bytes())
