"""Rich views of runs on Vertex AI Pipelines (``vmt runs`` / ``vmt runs show`` when the
orchestrator is ``vertex-pipelines``): read from the pipeline jobs, nothing stored here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from rich.console import RenderableType
from rich.table import Table

from vmt.backends.vertex.pipeline_jobs import PipelineRun

_STATE_STYLE = {
    "complete": "green",
    "failed": "red",
    "cancelled": "yellow",
    "running": "cyan",
    "pending": "dim",
}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def console_url(run: PipelineRun) -> str:
    """The pipeline job in the Google Cloud console."""
    _, project, _, region, _, job_id = run.resource_name.split("/")
    return (
        f"https://console.cloud.google.com/vertex-ai/locations/{region}/pipelines/runs/"
        f"{job_id}?project={project}"
    )


def pipeline_runs_table(runs: Sequence[PipelineRun]) -> Table:
    table = Table(title="runs on Vertex AI Pipelines", title_justify="left")
    for column in ("run", "state", "stage", "model run", "created", "updated", "error"):
        table.add_column(column, overflow="fold")
    for run in runs:
        style = _STATE_STYLE.get(run.state, "")
        table.add_row(
            run.job_id,
            f"[{style}]{run.state}[/]" if style else run.state,
            run.stage or "-",
            run.model_run_id or "-",
            _when(run.created),
            _when(run.updated),
            (run.error or "")[:80],
        )
    return table


def show_pipeline_run(run: PipelineRun) -> Iterable[RenderableType]:
    """The job's state, its steps and where to look further."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column(overflow="fold")
    summary.add_row("run", run.job_id)
    summary.add_row("state", f"{run.state} (pipeline job {run.job_state})")
    summary.add_row("stage", run.stage or "-")
    summary.add_row("model run", run.model_run_id or "-")
    summary.add_row("created", _when(run.created))
    summary.add_row("updated", _when(run.updated))
    summary.add_row("run folder", str(run.parameters.get("run_dir", "-")))
    summary.add_row("job", run.resource_name)
    summary.add_row("console", console_url(run))
    if run.error:
        summary.add_row("error", run.error)
    yield summary
    steps = Table(title="steps", title_justify="left")
    for column in ("step", "state", "started", "ended", "error"):
        steps.add_column(column, overflow="fold")
    for task in run.tasks:
        steps.add_row(task.name, task.state, _when(task.started), _when(task.ended), task.error)
    yield steps
