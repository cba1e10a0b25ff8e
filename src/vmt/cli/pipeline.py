"""``vmt pipeline compile`` and ``vmt pipeline submit``: the run as a Vertex AI pipeline; and
the ``vertex-pipelines`` side of ``vmt run``, ``vmt runs`` and ``vmt cancel``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vmt.cli.trainer_option import trainer_option

if TYPE_CHECKING:
    from vmt.config import Settings

pipeline_app = typer.Typer(
    help="Vertex AI Pipelines: compile the pipeline, submit a run (docs/deploy.md).",
    no_args_is_help=True,
)

ORCHESTRATOR_HELP = (
    "local (this process advances the run) or vertex-pipelines (a Vertex AI pipeline job); "
    "default: VMT_ORCHESTRATOR, else local."
)


def orchestrator_of(settings: Settings, option: str | None) -> str:
    """The orchestrator a command works with: the option, else the setting."""
    from vmt.errors import InputError
    from vmt.orchestrators.vertex_pipelines import ORCHESTRATORS

    chosen = option or settings.orchestrator
    if chosen not in ORCHESTRATORS:
        raise InputError(f"unknown orchestrator {chosen!r} (known: {', '.join(ORCHESTRATORS)})")
    return chosen


@pipeline_app.command("compile")
def compile_pipeline(
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the YAML."),
    image: str | None = typer.Option(
        None, "--image", help="The vmt image the steps run in (default: VMT_PIPELINE_IMAGE)."
    ),
) -> None:
    """Write the pipeline (six steps, retries, the exit handler) as KFP v2 YAML."""
    from vmt.cli.console import console
    from vmt.config import load_settings
    from vmt.errors import ConfigError
    from vmt.orchestrators.kfp_pipeline import compile_pipeline as compile_yaml

    image = image or load_settings().pipeline_image
    if not image:
        raise ConfigError("give --image or set VMT_PIPELINE_IMAGE (the vmt image of the steps)")
    compile_yaml(output, image=image)
    console.print(f"wrote {output} (steps run in {image})")


@pipeline_app.command("submit")
def submit(
    model_run: str = typer.Option(..., "--model-run", help="The Labelbox model run id."),
    trainer: str = trainer_option("vertex"),
    attempt: int = typer.Option(
        1, "--attempt", min=1, help="2, 3, ...: a new job for a model run whose job failed."
    ),
) -> None:
    """Submit the pipeline job of a model run (or attach to the one it already has)."""
    from vmt.config import load_settings

    submit_pipeline_run(load_settings(), model_run=model_run, trainer=trainer, attempt=attempt)


def submit_pipeline_run(
    settings: Settings,
    *,
    model_run: str,
    trainer: str,
    options: dict[str, object] | None = None,
    attempt: int = 1,
    unassigned: str | None = None,
) -> None:
    """Create (or attach to) the model run's pipeline job and say which, without waiting.
    Raises ``ConfigError`` for options the trainer does not take."""
    from vmt.backends.registry import trainer_spec
    from vmt.cli.console import console
    from vmt.cli.pipeline_views import console_url
    from vmt.orchestrators.vertex_pipelines import pipeline_jobs
    from vmt.pipeline.run_config import labelbox_run_config

    trainer_spec(trainer).validate_options(options or {})
    config = labelbox_run_config(
        model_run_id=model_run,
        trainer=trainer,
        trainer_options=options,
        unassigned=unassigned if unassigned is not None else settings.unassigned,
    )
    run, created = pipeline_jobs(settings).submit(config, model_run_id=model_run, attempt=attempt)
    verb = "submitted" if created else "already submitted; attached to"
    console.print(f"{verb} pipeline job {run.job_id} ({run.state})")
    console.print(f"follow it: vmt runs show {run.job_id} --orchestrator vertex-pipelines")
    console.print(f"console:   {console_url(run)}")


def list_pipeline_runs(settings: Settings, *, limit: int) -> None:
    from vmt.cli.console import console
    from vmt.cli.pipeline_views import pipeline_runs_table
    from vmt.orchestrators.vertex_pipelines import pipeline_jobs

    runs = pipeline_jobs(settings).list(limit=limit)
    if not runs:
        console.print(f"no vmt pipeline jobs in {settings.gcp_project}/{settings.gcp_region}")
        return
    console.print(pipeline_runs_table(runs))


def show_pipeline_run(settings: Settings, run_id: str) -> None:
    from vmt.cli.console import console
    from vmt.cli.pipeline_views import show_pipeline_run as views
    from vmt.orchestrators.vertex_pipelines import pipeline_jobs

    for renderable in views(pipeline_jobs(settings).get(run_id)):
        console.print(renderable)


def cancel_pipeline_run(settings: Settings, run_id: str) -> None:
    from vmt.cli.console import console
    from vmt.orchestrators.vertex_pipelines import pipeline_jobs

    run = pipeline_jobs(settings).cancel(run_id)
    console.print(f"run {run_id}: {run.state} (pipeline job {run.job_state})")


def register(app: typer.Typer) -> None:
    app.add_typer(pipeline_app, name="pipeline")
