"""The stateless service (``vmt serve --orchestrator vertex-pipelines``): the webhook submits
the model run's Vertex AI pipeline job and returns; the runs API reads pipeline jobs by label.

Nothing is kept in the process or on its disk, so any number of instances can serve (and
Cloud Run can scale to zero): "one run per model run" is Vertex AI's guarantee, because the job
id is derived from the model run id and a second create of that id is refused (ALREADY_EXISTS),
which ``PipelineJobs.submit`` answers by attaching to the existing job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vmt import __version__
from vmt.backends.registry import model_type_offers
from vmt.backends.vertex.pipeline_jobs import PipelineJobs, PipelineRun
from vmt.config import Settings
from vmt.errors import InputError, NotFoundError, RunConflictError
from vmt.model_types import model_type
from vmt.orchestrators.vertex_pipelines import pipeline_jobs
from vmt.pipeline.run_config import labelbox_run_config
from vmt.service.app import _secret
from vmt.service.auth import token_guard
from vmt.service.guards import install_guards
from vmt.service.http_errors import install_error_handlers
from vmt.service.runs_api import runs_router
from vmt.service.signature import SIGNATURE_HEADER
from vmt.service.webhook import parse_model_run_request, read_signed_body

log = logging.getLogger("vmt")


def offered_pipeline_model_types() -> list[str]:
    """The model types of the registered trainers whose steps run in the pipeline image
    (``TrainerSpec.in_pipeline_image``; the image has no torch)."""
    return [name for name, (_offer, spec) in model_type_offers().items() if spec.in_pipeline_image]


def run_view(run: PipelineRun, *, detail: bool) -> dict[str, Any]:
    """A pipeline run as the runs API shows runs (``run_id``, ``state``, ``stage``, ...)."""
    view: dict[str, Any] = {
        "run_id": run.job_id,
        "state": run.state,
        "stage": run.stage,
        "model_run_id": run.model_run_id,
        "created": run.created.isoformat() if run.created else None,
        "updated": run.updated.isoformat() if run.updated else None,
        "error": run.error,
        "orchestrator": "vertex-pipelines",
        "pipeline_job": run.resource_name,
        "pipeline_state": run.job_state,
    }
    if detail:
        view["run_dir"] = run.parameters.get("run_dir")
        view["steps"] = [
            {
                "step": task.name,
                "state": task.state,
                "started": task.started.isoformat() if task.started else None,
                "ended": task.ended.isoformat() if task.ended else None,
                "error": task.error,
            }
            for task in run.tasks
        ]
    return view


class PipelineJobRuns:
    """The runs API's ``RunService`` over pipeline jobs (reads only what Vertex AI holds)."""

    def __init__(self, jobs: PipelineJobs) -> None:
        self.jobs = jobs

    def new_run_id(self) -> str:
        raise NotImplementedError("pipeline run ids are derived from the model run id")

    def start_run(
        self, run_id: str, *, model_run_id: str, model_type: str, model_id: str | None
    ) -> None:
        raise NotImplementedError("the stateless webhook submits pipeline jobs itself")

    def run_state(self, run_id: str) -> str | None:
        view = self.get_run(run_id)
        return None if view is None else str(view["state"])

    def get_run(self, run_id: str) -> Mapping[str, Any] | None:
        try:
            return run_view(self.jobs.get(run_id), detail=True)
        except NotFoundError:
            return None

    def list_runs(self, *, limit: int) -> Sequence[Mapping[str, Any]]:
        return [run_view(run, detail=False) for run in self.jobs.list(limit=limit)]

    def cancel(self, run_id: str) -> Mapping[str, Any]:
        try:
            return run_view(self.jobs.cancel(run_id), detail=True)
        except InputError as exc:
            raise RunConflictError(exc.message, run_id=run_id) from exc

    def unfinished_runs(self) -> Sequence[str]:
        return []

    def advance(self, run_id: str) -> float | None:
        return None

    def check_ready(self) -> None:
        return None


def create_pipelines_app(
    settings: Settings,
    *,
    jobs: PipelineJobs | None = None,
    insecure: bool = False,
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """The stateless app: webhook -> pipeline job, runs API over pipeline jobs, health;
    behind ``vmt.service.guards`` (``allowed_hosts``: the Host names it answers, None: any)."""
    secret = _secret(settings, insecure=insecure)
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    if not token:
        log.warning("VMT_API_TOKEN is not set: the runs API (/runs) is open to anyone")
    jobs = jobs or pipeline_jobs(settings)
    offered = offered_pipeline_model_types()
    log.info("offering model types: %s (runs on Vertex AI Pipelines)", ", ".join(offered))

    app = FastAPI(
        title="vmt",
        version=__version__,
        summary="Labelbox 'Train model' integration on Vertex AI Pipelines (stateless).",
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
    )
    install_error_handlers(app)
    install_guards(app, timeout_s=settings.request_body_timeout_s, hosts=allowed_hosts)
    router = APIRouter(tags=["labelbox"])
    signature = Header(default=None, alias=SIGNATURE_HEADER)

    @router.get("/models", summary="Model types offered in Labelbox's Train model menu")
    async def get_models(request: Request, x_hub_signature: str | None = signature) -> Any:
        await read_signed_body(request, secret)
        return JSONResponse({name: {} for name in offered})

    @router.post(
        "/model_run",
        summary="Submit the model run's pipeline job (idempotent per modelRunId)",
        status_code=202,
    )
    async def post_model_run(request: Request, x_hub_signature: str | None = signature) -> Any:
        body = await read_signed_body(request, secret)
        model_run_id, name, model_id = parse_model_run_request(body, offered)
        config = labelbox_run_config(
            model_run_id=model_run_id,
            trainer=model_type(name).trainer,
            unassigned=settings.unassigned,
        )
        run, created = await run_in_threadpool(
            lambda: jobs.submit(config, model_run_id=model_run_id)
        )
        if created:
            log.info(
                "model run %s: submitted pipeline job %s (%s, model %s, delivery %s)",
                model_run_id,
                run.job_id,
                name,
                model_id,
                request.headers.get("X-Labelbox-Id", "-"),
            )
        return JSONResponse(
            {"run_id": run.job_id, "model_run_id": model_run_id, "status": run.state},
            status_code=202 if created else 200,
        )

    app.include_router(router)
    app.include_router(
        runs_router(runs=PipelineJobRuns(jobs), require_token=token_guard(token or None))
    )

    @app.get("/healthz", tags=["health"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Ready (no local state to check)")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app
