"""The app factory: ``create_app(settings, runner=...)`` wires the webhook, the runs API, the
health probes, JSON error handlers and the in-process worker (started in the lifespan)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from vmt import __version__
from vmt.backends.gcs_images import run_image_reader
from vmt.backends.registry import model_type_offers
from vmt.config import Settings
from vmt.errors import ConfigError
from vmt.service.auth import token_guard
from vmt.service.deliveries import DeliveryStore
from vmt.service.guards import install_guards
from vmt.service.http_errors import install_error_handlers
from vmt.service.labelling import LabellingService, PipelineLabelling, labelling_router
from vmt.service.runs import RunService
from vmt.service.runs_api import health_router, runs_router
from vmt.service.webhook import webhook_router
from vmt.service.worker import RunWorker

log = logging.getLogger("vmt")

DELIVERIES_DB = "service.db"


def offered_model_types(settings: Settings) -> list[str]:
    """The model types this deployment can train (each registered trainer's availability
    check), logging why any other is left out."""
    offered: list[str] = []
    for name, (_offer, spec) in model_type_offers().items():
        reason = spec.unavailable(settings)
        if reason is None:
            offered.append(name)
        else:
            log.info("not offering %s: %s", name, reason)
    return offered


def _secret(settings: Settings, *, insecure: bool) -> bytes | None:
    value = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    if value:
        return value.encode("utf-8")
    if not insecure:
        try:
            settings.require("webhook_secret")
        except ConfigError as exc:
            raise ConfigError(
                f"{exc.message}; refusing to accept unsigned webhooks (--insecure to allow)"
            ) from exc
    log.warning(
        "INSECURE: no webhook secret; anyone who can reach this service can start training runs"
    )
    return None


def add_dashboard(
    app: FastAPI,
    settings: Settings,
    *,
    runs: RunService,
    worker: RunWorker | None,
    token: str | None,
) -> None:
    """The dashboard pages (``/ui``) over the run store the runs come from; its resume button
    schedules on the service's worker."""
    from vmt.backends.factory import build_backends
    from vmt.pipeline.runner import Runner
    from vmt.service.dashboard import RunnerActions, install_dashboard

    pipeline = getattr(runs, "runner", None)
    if isinstance(pipeline, Runner):
        runner = pipeline
    else:
        runner = Runner(settings, backends_factory=build_backends)

    def schedule(run_id: str) -> None:
        if worker is None:
            log.warning("run %s resumed but this service runs no worker: it waits", run_id)
        else:
            worker.submit(run_id)

    install_dashboard(
        app,
        store=runner.store,
        actions=RunnerActions(runner, schedule),
        token=token,
        session_hours=settings.session_hours,
        remote_images=run_image_reader(settings),
    )


def create_app(
    settings: Settings,
    *,
    runner: RunService | None = None,
    insecure: bool = False,
    worker_threads: int = 1,
    run_worker: bool = True,
    model_types: Sequence[str] | None = None,
    labelling: LabellingService | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """The web app. ``runner`` defaults to the pipeline runner on ``settings.state_dir``;
    ``run_worker=False`` leaves runs queued (tests of the HTTP layer); ``allowed_hosts``: the
    Host names it answers (None: any), ``vmt.service.guards`` in front of every route."""
    secret = _secret(settings, insecure=insecure)
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    if not token:
        log.warning("VMT_API_TOKEN is not set: the runs API (/runs) is open to anyone")
    pipeline_labelling = PipelineLabelling(settings)
    if runner is None:
        from vmt.service.pipeline_runs import PipelineRunService

        auto = settings.auto_prelabel_project and settings.auto_prelabel_pool
        runner = PipelineRunService(
            settings, on_complete=pipeline_labelling.auto_prelabel if auto else None
        )
    deliveries = DeliveryStore(settings.state_dir / DELIVERIES_DB)
    offered = list(model_types) if model_types is not None else offered_model_types(settings)
    log.info("offering model types: %s", ", ".join(offered) or "(none)")
    worker = RunWorker(runner, threads=worker_threads) if run_worker else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if worker is not None:
            await run_in_threadpool(deliveries.recover, lambda r: runner.run_state(r) is not None)
            ours = deliveries.run_ids()
            worker.start(resume=[r for r in runner.unfinished_runs() if r in ours])
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            deliveries.close()

    app = FastAPI(
        title="vmt",
        version=__version__,
        summary="Labelbox 'Train model' integration: signed webhooks, runs API, health.",
        lifespan=lifespan,
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
    )
    install_error_handlers(app)
    install_guards(app, timeout_s=settings.request_body_timeout_s, hosts=allowed_hosts)
    app.include_router(
        webhook_router(
            secret=secret, model_types=offered, deliveries=deliveries, runs=runner, worker=worker
        )
    )
    app.include_router(runs_router(runs=runner, require_token=token_guard(token or None)))
    app.include_router(
        labelling_router(
            labelling=labelling or pipeline_labelling, require_token=token_guard(token or None)
        )
    )
    app.include_router(health_router(deliveries=deliveries, runs=runner))
    add_dashboard(app, settings, runs=runner, worker=worker, token=token or None)
    app.state.worker = worker
    app.state.deliveries = deliveries
    return app
