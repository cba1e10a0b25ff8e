"""What ``vmt run --json`` prints on stdout, and which display shows the run on stderr."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from vmt.cli.ci_gate import gate
from vmt.cli.json_display import JsonRunDisplay
from vmt.cli.run_display import RichRunDisplay
from vmt.pipeline import artifacts
from vmt.pipeline.protocols import REPORT_HANDLE
from vmt.pipeline.results import headline_of
from vmt.pipeline.store import RunRecord, RunStore
from vmt.quality_gate import Threshold, Verdict


def run_display(*, json_logs: bool) -> RichRunDisplay | JsonRunDisplay:
    """Progress bars and human lines, or JSON lines (``--json`` / ``VMT_LOG_JSON=1``)."""
    return JsonRunDisplay() if json_logs else RichRunDisplay()


def run_summary(
    store: RunStore, record: RunRecord, thresholds: Sequence[Threshold]
) -> tuple[dict[str, Any], Verdict | None]:
    """The run's outcome as JSON (id, state, error, headline, metrics, where its files are)
    and the verdict of ``thresholds`` on its ``metrics.json`` (None without thresholds)."""
    metrics_path = store.run_dir(record.id) / artifacts.METRICS_FILE
    document = orjson.loads(metrics_path.read_bytes()) if metrics_path.is_file() else {}
    verdict = gate(document, thresholds)
    headline = headline_of(record.metrics)
    summary: dict[str, Any] = {
        "run_id": record.id,
        "state": record.state.value,
        "error": record.error,
        "headline": headline.model_dump() if headline else None,
        "metrics": record.metrics,
        "metrics_file": str(metrics_path) if metrics_path.is_file() else None,
        "report": store.handles(record.id).get(REPORT_HANDLE),
        "results": record.config.sink.options.get("out_dir"),
        "gate": verdict.to_json() if verdict else None,
    }
    return summary, verdict
