"""Rich renderings of the run store for ``vmt runs`` and ``vmt runs show``."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from datetime import datetime

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from vmt.cli.run_display import metrics_table
from vmt.pipeline import artifacts
from vmt.pipeline.protocols import Stage
from vmt.pipeline.results import PrepareResult, result_from_json
from vmt.pipeline.store import RunRecord, RunState, RunStore, StageState

_STATE_STYLE = {
    "complete": "green",
    "failed": "red",
    "cancelled": "yellow",
    "planned": "blue",
    "running": "cyan",
    "interrupted": "magenta",
    "pending": "dim",
    "done": "green",
}


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def display_state(run: RunRecord) -> str:
    """The run's state, with ``interrupted`` for a running run that nobody advances (its
    process died or was stopped): `vmt resume` continues it."""
    if run.state is RunState.RUNNING and not run.is_active():
        return "interrupted"
    return run.state.value


def _styled(state: str) -> Text:
    return Text(state, style=_STATE_STYLE.get(state, ""))


def _headline(run: RunRecord) -> str:
    headline = run.headline()
    return "" if headline is None or headline.ap50 is None else f"{headline.ap50:.3f}"


def runs_table(runs: list[RunRecord]) -> Table:
    table = Table(title="Runs")
    for column in ("run", "created", "state", "stage", "trainer", "input", "AP50", "error"):
        table.add_column(column, overflow="fold")
    for run in runs:
        error = run.error or ""
        table.add_row(
            run.id,
            _when(run.created),
            _styled(display_state(run)),
            run.stage.value if run.stage else "",
            run.config.trainer.kind,
            run.config.label or run.config.source.kind,
            _headline(run),
            error if len(error) <= 80 else error[:79] + "…",
        )
    return table


def show_run(
    store: RunStore, run_id: str, *, events: int, rejections: int
) -> Iterator[RenderableType]:
    run = store.get_run(run_id)
    state = display_state(run)
    header = Table.grid(padding=(0, 2))
    header.add_row("run", run.id)
    header.add_row("state", _styled(state))
    header.add_row("created", _when(run.created))
    header.add_row("updated", _when(run.updated))
    config = run.config
    for role, spec in (
        ("source", config.source),
        ("trainer", config.trainer),
        ("sink", config.sink),
    ):
        options = ", ".join(f"{k}={v}" for k, v in spec.options.items())
        header.add_row(role, f"{spec.kind}" + (f" ({options})" if options else ""))
    header.add_row("folder", str(store.run_dir(run.id)))
    if run.lease is not None and run.is_active():
        header.add_row("advanced by", run.lease.describe())
    if run.cancel_requested and run.state is not RunState.CANCELLED:
        header.add_row("cancel", "requested")
    if run.error:
        header.add_row("error", Text(run.error, style="red"))
    if state in ("interrupted", "planned"):
        header.add_row("next", f"vmt resume {run.id}")
    yield header

    yield _stages_table(store, run_id)

    handles = store.handles(run_id)
    if handles:
        table = Table(title="Handles")
        table.add_column("key")
        table.add_column("value", overflow="fold")
        for key, value in handles.items():
            table.add_row(key, value)
        yield table

    if run.evaluation is not None:
        yield metrics_table(run.evaluation)

    yield from _rejections(store, run_id, limit=rejections)

    errors = store.errors(run_id)
    if errors:
        table = Table(title=f"Errors ({len(errors)})")
        for column in ("time", "stage", "kind", "retryable", "message"):
            table.add_column(column, overflow="fold")
        for error in errors[-20:]:
            table.add_row(
                _when(error.ts),
                error.stage.value if error.stage else "",
                error.kind,
                "yes" if error.retryable else "no",
                error.message,
            )
        yield table

    history = store.events(run_id, last=events)
    total = store.count_events(run_id)
    table = Table(title=f"Events (latest {len(history)} of {total})")
    for column in ("time", "stage", "event", "data"):
        table.add_column(column, overflow="fold")
    for event in history:
        data = " ".join(f"{k}={v}" for k, v in event.data.items())
        table.add_row(
            _when(event.ts), event.stage.value if event.stage else "", event.message, data
        )
    yield table


def _stages_table(store: RunStore, run_id: str) -> Table:
    table = Table(title="Stages")
    for column in ("stage", "state", "attempts", "started", "seconds", "outputs / error"):
        table.add_column(column, overflow="fold")
    for record in store.stages(run_id):
        seconds = record.seconds
        if record.state is StageState.RUNNING and record.progress_done is not None:
            total = record.progress_total
            detail = f"progress {record.progress_done}" + (f"/{total}" if total else "")
        elif record.error:
            detail = record.error
        else:
            brief = result_from_json(record.stage, record.outputs).brief() if record.outputs else {}
            detail = " ".join(f"{k}={v}" for k, v in brief.items())
        table.add_row(
            record.stage.value,
            _styled(record.state.value),
            str(record.attempts),
            _when(record.started),
            "" if seconds is None else f"{seconds:.1f}",
            detail,
        )
    return table


def _rejections(store: RunStore, run_id: str, *, limit: int) -> Iterator[RenderableType]:
    prepared = store.stage(run_id, Stage.PREPARE)
    by_reason: Mapping[str, int] = {}
    if prepared.state is StageState.DONE:
        by_reason = store.result(run_id, PrepareResult).rejections_by_reason
    path = store.run_dir(run_id) / artifacts.REJECTIONS_FILE
    if not by_reason and not path.exists():
        return
    if not by_reason:  # prepare failed before recording its outputs: count from the file
        counts: dict[str, int] = {}
        for rejection in artifacts.read_rejections(path):
            counts[rejection.reason] = counts.get(rejection.reason, 0) + 1
        by_reason = counts
    total = sum(by_reason.values())
    if total == 0:
        return
    summary = ", ".join(f"{reason}: {n}" for reason, n in by_reason.items())
    yield Text(f"Rejected rows: {total} ({summary})", style="yellow")
    table = Table(title=f"Rejected rows (first {min(limit, total)})")
    for column in ("line", "data row", "reason", "detail"):
        table.add_column(column, overflow="fold")
    for rejection in itertools.islice(artifacts.read_rejections(path), limit):
        table.add_row(
            "" if rejection.line is None else str(rejection.line),
            rejection.data_row_id or "",
            rejection.reason,
            rejection.detail,
        )
    yield table
