"""The run as a Kubeflow Pipelines v2 pipeline for Vertex AI Pipelines (``vmt pipeline compile``).

Six lightweight Python components, one per stage, each calling ``vmt.orchestrators.steps``
(the same stage functions as the local runner) inside our image, in order
``export -> prepare -> train -> predict -> evaluate -> publish``; ``train`` passes the model
reference to ``predict`` and both emit ``gcp_resources`` (the AutoML dataset, training pipeline,
model and batch prediction job, linked from the Vertex AI Pipelines console) and ``train`` a
``Model`` artifact that points at the Vertex model. Every step has a retry policy. The stages sit
inside an ``ExitHandler`` whose task marks the Labelbox model run FAILED with the failing step's
message when the pipeline does not succeed.

Pipeline parameters (all strings): ``run_id`` (the vmt run id, = the pipeline job id),
``run_config`` (``RunConfig`` JSON), ``settings`` (non-secret settings JSON,
``steps.step_settings_json``) and ``run_dir`` (the run folder: a ``gs://`` URI under the
pipeline root; steps read it through the bucket mount).

No ``from __future__ import annotations`` here: kfp reads the components' annotations.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from kfp import compiler, dsl

PIPELINE_NAME = "vmt-run"

STAGE_ORDER = ("export", "prepare", "train", "predict", "evaluate", "publish")

EXIT_TASK = "report-run-end"


class Retry(NamedTuple):
    """A step's retry policy (Vertex AI Pipelines; ``kfp.local`` does not retry)."""

    retries: int
    backoff: str = "30s"
    factor: float = 2.0
    max_duration: str = "3600s"


RETRY: dict[str, Retry] = {
    "export": Retry(3),
    "prepare": Retry(2),
    "train": Retry(2, backoff="60s"),
    "predict": Retry(2, backoff="60s"),
    "evaluate": Retry(1),
    "publish": Retry(3),
    EXIT_TASK: Retry(3),
}
"""Retries are safe: a retried step re-attaches to its external jobs (handles in the run
folder) and a finished stage is never redone."""


# --- the components' functions (their source runs in the step's container) -----------------
def export(run_id: str, run_config: str, settings: str, run_dir: str) -> str:
    """Stream the run's rows (Labelbox model-run export or export file) to the run folder."""
    import json

    from vmt.orchestrators.steps import run_step

    outputs = run_step(
        "export", run_id=run_id, run_config=run_config, settings=settings, run_dir=run_dir
    )
    return json.dumps(outputs)


def prepare(run_id: str, run_config: str, settings: str, run_dir: str) -> str:
    """Parse, validate and convert the rows; stage the images where the trainer needs them."""
    import json

    from vmt.orchestrators.steps import run_step

    outputs = run_step(
        "prepare", run_id=run_id, run_config=run_config, settings=settings, run_dir=run_dir
    )
    return json.dumps(outputs)


def train(
    run_id: str,
    run_config: str,
    settings: str,
    run_dir: str,
    model: dsl.Output[dsl.Model],
    gcp_resources: dsl.OutputPath(str),  # type: ignore[valid-type]
) -> str:
    """Train with the run's registered trainer; returns the model reference and links the
    cloud resources the trainer declares for this step (e.g. Vertex dataset, pipeline, model)."""
    from pathlib import Path

    from vmt.orchestrators.steps import run_step, step_resources

    outputs = run_step(
        "train", run_id=run_id, run_config=run_config, settings=settings, run_dir=run_dir
    )
    reference = str(outputs["model"])
    resources = step_resources(run_id, run_dir, settings, run_config, "train")
    Path(gcp_resources).write_text(resources)
    model.metadata["reference"] = reference
    if reference.startswith("projects/"):
        model.metadata["resourceName"] = reference
        region = reference.split("/")[3]
        model.uri = f"https://{region}-aiplatform.googleapis.com/v1/{reference}"
    return reference


def predict(
    run_id: str,
    run_config: str,
    settings: str,
    run_dir: str,
    model: str,
    gcp_resources: dsl.OutputPath(str),  # type: ignore[valid-type]
) -> str:
    """Batch prediction on every VALIDATION and TEST row; links the trainer's prediction
    resources (e.g. the Vertex batch prediction job)."""
    import json
    from pathlib import Path

    from vmt.orchestrators.steps import run_step, step_resources

    outputs = run_step(
        "predict", run_id=run_id, run_config=run_config, settings=settings, run_dir=run_dir
    )
    resources = step_resources(run_id, run_dir, settings, run_config, "predict")
    Path(gcp_resources).write_text(resources)
    return json.dumps({**outputs, "model": model})


def evaluate(run_id: str, run_config: str, settings: str, run_dir: str) -> str:
    """COCO metrics, error analysis, the HTML report and per-row metrics; returns the summary."""
    import json

    from vmt.orchestrators.steps import run_step

    outputs = run_step(
        "evaluate", run_id=run_id, run_config=run_config, settings=settings, run_dir=run_dir
    )
    return json.dumps(outputs)


def publish(run_id: str, run_config: str, settings: str, run_dir: str) -> str:
    """Upload predictions (with confidence) and metrics to the model run; report COMPLETE."""
    import json

    from vmt.orchestrators.steps import run_step

    outputs = run_step(
        "publish", run_id=run_id, run_config=run_config, settings=settings, run_dir=run_dir
    )
    return json.dumps(outputs)


def report_run_end(
    run_id: str,
    run_config: str,
    settings: str,
    run_dir: str,
    status: dsl.PipelineTaskFinalStatus,
) -> str:
    """The exit handler: a pipeline that did not succeed marks the model run FAILED with the
    failing step's message."""
    from vmt.orchestrators.steps import report_pipeline_end

    return report_pipeline_end(
        run_id=run_id,
        run_config=run_config,
        settings=settings,
        run_dir=run_dir,
        state=status.state,
        error_message=status.error_message or "",
    )


_STAGE_FUNCTIONS: dict[str, Callable[..., str]] = {
    "export": export,
    "prepare": prepare,
    "train": train,
    "predict": predict,
    "evaluate": evaluate,
    "publish": publish,
}


def components(image: str) -> dict[str, Any]:
    """The seven components (six stages and the exit handler) running in ``image``, which must
    have vmt with its ``[pipelines]`` extra installed (the Dockerfile's image)."""

    def make(fn: Callable[..., str]) -> Any:
        return dsl.component(fn, base_image=image, install_kfp_package=False)

    built = {name: make(fn) for name, fn in _STAGE_FUNCTIONS.items()}
    built[EXIT_TASK] = make(report_run_end)
    return built


def _add_stages(built: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    tasks: dict[str, Any] = {}
    previous = None
    for name in STAGE_ORDER:
        extra = {"model": tasks["train"].outputs["Output"]} if name == "predict" else {}
        task = built[name](**params, **extra)
        if previous is not None:
            task.after(previous)
        _configure(task, name)
        tasks[name] = previous = task
    return tasks


def _configure(task: Any, name: str) -> None:
    retry = RETRY[name]
    task.set_display_name(name)
    task.set_caching_options(False)
    task.set_retry(
        num_retries=retry.retries,
        backoff_duration=retry.backoff,
        backoff_factor=retry.factor,
        backoff_max_duration=retry.max_duration,
    )


def pipeline_trainers() -> tuple[str, ...]:
    """The registered trainers whose steps run in the pipeline image, as the compiled
    pipeline's description names them."""
    from vmt.backends.registry import trainer_specs

    return tuple(spec.name for spec in trainer_specs() if spec.in_pipeline_image)


def build_pipeline(image: str, *, exit_handler: bool = True) -> Any:
    """The pipeline function (``@dsl.pipeline``). ``exit_handler=False`` leaves the exit handler
    out, for ``kfp.local``, which does not run exit handlers. Its description names the
    trainers of the registry it runs (``pipeline_trainers``)."""
    built = components(image)
    trainers = f"trainers: {', '.join(pipeline_trainers())}"

    if exit_handler:

        @dsl.pipeline(  # type: ignore[untyped-decorator]
            name=PIPELINE_NAME, description=f"vmt: train a detector on a model run ({trainers})"
        )
        def vmt_run(run_id: str, run_config: str, settings: str, run_dir: str) -> None:
            params = {
                "run_id": run_id,
                "run_config": run_config,
                "settings": settings,
                "run_dir": run_dir,
            }
            end = built[EXIT_TASK](**params)
            _configure(end, EXIT_TASK)
            with dsl.ExitHandler(end, name="run-stages"):
                _add_stages(built, params)

        return vmt_run

    @dsl.pipeline(  # type: ignore[untyped-decorator]
        name=PIPELINE_NAME, description=f"vmt: train a detector, no exit handler ({trainers})"
    )
    def vmt_run_local(run_id: str, run_config: str, settings: str, run_dir: str) -> None:
        params = {
            "run_id": run_id,
            "run_config": run_config,
            "settings": settings,
            "run_dir": run_dir,
        }
        _add_stages(built, params)

    return vmt_run_local


def compile_pipeline(path: Path, *, image: str) -> Path:
    """Write the pipeline (with its exit handler) for ``image`` to ``path`` (YAML)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_func=build_pipeline(image), package_path=str(path))
    return path
