"""One stage of a run as a pipeline step: the same stage functions as the local runner.

A Vertex AI pipeline (``kfp_pipeline``) runs each stage in its own container with four string
parameters: the run id, the ``RunConfig`` JSON, the non-secret settings JSON and the run folder
(a ``gs://`` URI under the pipeline root, read through the step's bucket mount). Each step
reports its stage's Labelbox status before it starts, as the local runner does; publish reports
COMPLETE; a failing step writes its one-line message (``failure_message``, <= 255 characters)
to the run folder and fails, and the pipeline's exit handler reports it as FAILED.

Steps are idempotent: a retried step whose stage already finished returns the recorded outputs,
and backends re-attach to external jobs through the handles kept in the run folder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from vmt.backends.registry import LinkStep, resource_types, trainer_specs
from vmt.config import Settings, load_settings, secret_setting_names
from vmt.pipeline.failure import MAX_MESSAGE, failure_message
from vmt.pipeline.protocols import RunStatus, Stage
from vmt.pipeline.run_config import RunConfig
from vmt.pipeline.stage_driver import StageDriver
from vmt.pipeline.stage_driver import run_metadata as stage_metadata
from vmt.pipeline.stages import RunPaths
from vmt.pipeline.waiting import wait_for

from .run_folder import FolderRunContext, local_path

if TYPE_CHECKING:
    from vmt.backends.factory import Backends

log = logging.getLogger("vmt")

ORCHESTRATOR = "vertex-pipelines"

CANCELLED_MESSAGE = "Run cancelled: its Vertex AI pipeline job was cancelled; start a new run."

_HOST_SETTINGS = frozenset({"state_dir", "log_json"})
"""Settings of the submitting machine that mean nothing in a step's container."""


# --- settings ------------------------------------------------------------------------------
def step_settings_json(settings: Settings) -> str:
    """The settings a step needs, as the JSON pipeline parameter: every setting but secrets and
    the submitting host's own (steps read secrets from their environment)."""
    excluded = secret_setting_names() | _HOST_SETTINGS
    return orjson.dumps(settings.model_dump(mode="json", exclude=set(excluded))).decode()


def load_step_settings(settings_json: str) -> Settings:
    """Settings inside a step: the pipeline's JSON over the step's environment; the Labelbox
    API key from Secret Manager when ``labelbox_api_key_secret`` names it."""
    from vmt.backends.secret_manager import with_secrets

    overrides = orjson.loads(settings_json) if settings_json else {}
    return with_secrets(load_settings(**overrides))


# --- one stage -----------------------------------------------------------------------------
def run_step(
    stage_name: str,
    *,
    run_id: str,
    run_config: str,
    settings: str,
    run_dir: str,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Run ``stage_name`` of the run in ``run_dir`` and return its outputs (JSON-able). A step
    is its own container with nothing else to do: it waits on the trainer's job in place.

    Raises whatever the stage raises, after recording the failure message in the run folder.
    """
    stage = Stage(stage_name)
    ctx = FolderRunContext(run_id, local_path(run_dir))
    ctx.stage = stage
    done = ctx.stage_outputs(stage)
    if done is not None:
        ctx.event("stage already done; not redone")
        return done
    failure = ctx.failure()
    if failure is not None and failure.get("stage") == stage.value:
        ctx.clear_failure()  # this is the retry of the step that failed
    config = RunConfig.from_json(run_config)
    backends: Backends | None = None
    try:
        step_settings = load_step_settings(settings)
        backends = build_backends(config, step_settings)
        driver = StageDriver(
            backends, ctx, ctx, trainer_kind=config.trainer.kind, orchestrator=ORCHESTRATOR
        )
        driver.report_started(stage)
        ctx.event("stage started")
        result = wait_for(lambda: driver.run(stage), ctx, sleep=sleep)
        if stage is Stage.PUBLISH:
            driver.report(RunStatus.COMPLETE, None)
            ctx.event("run complete")
        return result.to_json()
    except Exception as exc:
        message = failure_message(stage, exc, run_id=run_id)
        if backends is None or not _is_vmt_error(exc):
            log.exception("run %s: stage %s failed", run_id, stage)
        ctx.set_failure(stage, message)
        ctx.event("stage failed", error=message)
        raise


def build_backends(config: RunConfig, settings: Settings) -> Backends:
    from vmt.backends.factory import build_backends as build

    return build(config, settings)


def run_metadata(
    ctx: FolderRunContext, config: RunConfig, stage: Stage | None, *, complete: bool = False
) -> dict[str, Any]:
    """The metadata sent with a status (``stage_driver.run_metadata``, with the orchestrator)."""
    return stage_metadata(
        ctx,
        run_id=ctx.run_id,
        trainer=config.trainer.kind,
        stage=stage,
        complete=complete,
        report=RunPaths(ctx.workdir).report,
        orchestrator=ORCHESTRATOR,
    )


# --- cloud resources linked from the pipeline --------------------------------------------
def gcp_resources(handles: Mapping[str, str], *, region: str, keys: tuple[str, ...]) -> str:
    """The ``gcp_resources`` output of a step (JSON of ``GcpResources``): the Google Cloud
    resources behind ``keys`` that the run recorded (their types from the trainer registry's
    ``ResourceLink``), which the Vertex AI Pipelines console links."""
    types = resource_types()
    resources = [
        {
            "resourceType": types[key],
            "resourceUri": f"https://{region}-aiplatform.googleapis.com/v1/{handles[key]}",
        }
        for key in keys
        if handles.get(key, "").startswith("projects/")
    ]
    return orjson.dumps({"resources": resources}).decode()


def step_resource_keys(run_config: str, step: LinkStep) -> tuple[str, ...]:
    """The handles the run's trainer links from pipeline step ``step`` (``train``,
    ``predict``); none for a trainer this image does not know."""
    kind = RunConfig.from_json(run_config).trainer.kind
    spec = next((s for s in trainer_specs() if s.name == kind), None)
    return tuple(r.handle for r in spec.resources if r.step == step) if spec else ()


def step_resources(run_id: str, run_dir: str, settings: str, run_config: str, step: str) -> str:
    """``gcp_resources`` of a finished step, from the handles in its run folder."""
    ctx = FolderRunContext(run_id, local_path(run_dir))
    region = load_step_settings(settings).gcp_region
    keys = step_resource_keys(run_config, "predict" if step == "predict" else "train")
    return gcp_resources(ctx.handles(), region=region, keys=keys)


# --- the exit handler ----------------------------------------------------------------------
def report_pipeline_end(
    *,
    run_id: str,
    run_config: str,
    settings: str,
    run_dir: str,
    state: str,
    error_message: str,
) -> str:
    """The exit handler's work: when the pipeline did not succeed, mark the run FAILED on its
    sink (the Labelbox model run) with the failing step's message, or, when no step left one
    (a crash, a cancel), with the pipeline's own error. Returns the status reported."""
    ctx = FolderRunContext(run_id, local_path(run_dir))
    if state == "SUCCEEDED":
        return RunStatus.COMPLETE.value
    failure = ctx.failure()
    if failure is not None:
        message = failure["message"]
    elif state == "CANCELLED":
        message = CANCELLED_MESSAGE
    else:
        detail = " ".join(error_message.split()) or f"the pipeline ended {state}"
        message = f"Run failed: {detail}"
    message = message[:MAX_MESSAGE]
    config = RunConfig.from_json(run_config)
    backends = build_backends(config, load_step_settings(settings))
    stage = Stage(failure["stage"]) if failure else None
    ctx.stage = stage
    backends.sink.report_status(
        ctx, RunStatus.FAILED, metadata=run_metadata(ctx, config, stage), error=message
    )
    ctx.event("run failed", error=message, pipeline_state=state)
    return RunStatus.FAILED.value


def _is_vmt_error(exc: BaseException) -> bool:
    from vmt.errors import VmtError

    return isinstance(exc, VmtError)
