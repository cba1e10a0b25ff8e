"""Showing an advancing run in the terminal: a rich progress bar per stage, event lines, and
the outcome (metrics table, results folder) or the failure message."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from vmt.cli.console import console, err_console
from vmt.cli.event_lines import event_line
from vmt.errors import VmtError
from vmt.pipeline.context import RunObserver
from vmt.pipeline.protocols import REPORT_HANDLE, Stage
from vmt.pipeline.results import ROW_SET_NAMES, EvaluateResult
from vmt.pipeline.store import RunRecord, RunState, RunStore


class RichRunDisplay(RunObserver):
    """One progress bar per stage on stderr; other events as dim lines above the bars."""

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[stage]:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[what]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
        )
        self._tasks: dict[Stage | None, TaskID] = {}

    def __enter__(self) -> RichRunDisplay:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def note(self, message: str) -> None:
        self._progress.console.print(message, highlight=False)

    def _task(self, stage: Stage | None) -> TaskID:
        if stage not in self._tasks:
            name = stage.value if stage else "run"
            self._tasks[stage] = self._progress.add_task(name, total=None, stage=name, what="")
        return self._tasks[stage]

    def event(
        self, run_id: str, stage: Stage | None, message: str, data: Mapping[str, Any]
    ) -> None:
        if message == "stage started":
            self._task(stage)
        elif message == "stage done":
            task = self._task(stage)
            total = self._progress.tasks[task].total or 1
            self._progress.update(task, total=total, completed=total, what="done")
        line = event_line(stage.value if stage else None, message, data)
        if line is not None:
            self._progress.console.print(Text(line, style="dim"), highlight=False, soft_wrap=True)

    def progress(
        self, run_id: str, stage: Stage | None, done: int, total: int | None, what: str
    ) -> None:
        self._progress.update(self._task(stage), completed=done, total=total, what=what)


def metrics_table(evaluation: EvaluateResult) -> Table:
    """The run's metrics: one row per evaluated set, the headline set marked ``*``."""
    table = Table(title="Detection metrics (COCO)")
    table.add_column("rows evaluated")
    for key in ("mAP", "AP50", "AP75"):
        table.add_column(key, justify="right")
    headline = evaluation.headline().rows
    for name, summary in evaluation.row_sets().items():
        mark = " *" if name == headline else ""
        table.add_row(
            ROW_SET_NAMES[name] + mark,
            *(_fmt(v) for v in (summary.map, summary.ap50, summary.ap75)),
        )
    return table


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "–"


def finish_run(store: RunStore, record: RunRecord) -> None:
    """Print a completed run's metrics and where its results are, or a planned (dry) run's plan
    and how to launch it; raise ``VmtError`` (with the failed stage) on any other end."""
    if record.state is RunState.COMPLETE:
        if record.evaluation is not None:
            console.print(metrics_table(record.evaluation))
        report = store.handles(record.id).get(REPORT_HANDLE)
        if report is None:
            report = str(store.run_dir(record.id) / "report.html")
        out_dir = record.config.sink.options.get("out_dir")
        if out_dir:
            console.print(f"results: {Path(out_dir)}", highlight=False)
        console.print(f"report:  {report}", highlight=False)
        console.print(f"run:     {record.id} (vmt runs show {record.id})", highlight=False)
        console.print("browse:  vmt ui (the runs in a web page)", highlight=False)
        return
    if record.state is RunState.PLANNED:
        plan = next(
            (
                e.data.get("plan")
                for e in reversed(store.events(record.id))
                if e.message == "run planned"
            ),
            None,
        )
        console.print(f"planned: {plan or 'stopped before launching training'}", highlight=False)
        console.print(f"launch:  vmt resume {record.id}", highlight=False)
        return
    if record.state is RunState.CANCELLED:
        raise VmtError(f"run {record.id} was cancelled", run_id=record.id)
    raise VmtError(
        record.error or f"run {record.id} ended {record.state.value}",
        run_id=record.id,
        stage=record.stage.value if record.stage else None,
    )
