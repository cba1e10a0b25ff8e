"""The files an evaluation is delivered as, written one way for ``vmt evaluate`` and for a run's
evaluate stage: ``metrics.json`` (``Evaluation.to_json()`` plus what the caller adds), the HTML
report and the per-row Labelbox metrics NDJSON. Each is written atomically (a reader never sees
half a file) into a folder made if missing."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from vmt.durable_files import atomic_writer, write_atomic
from vmt.evaluation.labelbox_metrics import row_metric_rows
from vmt.evaluation.report_html import ImagePath, write_report_html
from vmt.evaluation.result import Evaluation


def write_evaluation_outputs(
    evaluation: Evaluation,
    metrics: Mapping[str, Any],
    *,
    metrics_out: Path,
    report_out: Path | None = None,
    row_metrics_out: Path | None = None,
    image_path: ImagePath | None = None,
    namespace: str = "",
) -> list[Path]:
    """Write ``metrics`` (the ``metrics.json`` document) to ``metrics_out``, the report of
    ``evaluation`` to ``report_out`` (images of its worst rows found by ``image_path``) and its
    per-row metrics to ``row_metrics_out`` (annotation ids derived from ``namespace``); the
    optional ones only when given. Returns the paths written, in that order."""
    written = [metrics_out]
    metrics_out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(metrics_out, orjson.dumps(metrics, option=orjson.OPT_INDENT_2))
    if report_out is not None:
        report_out.parent.mkdir(parents=True, exist_ok=True)
        write_report_html(evaluation, report_out, image_path=image_path)
        written.append(report_out)
    if row_metrics_out is not None:
        row_metrics_out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(row_metrics_out) as out:
            for row in row_metric_rows(evaluation, namespace=namespace):
                out.write(orjson.dumps(row))
                out.write(b"\n")
        written.append(row_metrics_out)
    return written
