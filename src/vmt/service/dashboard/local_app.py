"""``vmt ui``: the dashboard alone over the local run store (no webhook); runs resumed from it
are advanced by its own run worker, the service's one scheduler."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vmt import __version__
from vmt.backends.gcs_images import run_image_reader
from vmt.config import Settings
from vmt.errors import ConfigError
from vmt.pipeline.runner import Runner
from vmt.service.dashboard.actions import RunnerActions
from vmt.service.dashboard.routes import install_dashboard
from vmt.service.guards import allowed_host_names, install_guards, is_loopback

log = logging.getLogger("vmt")


def create_ui_app(
    settings: Settings, *, host: str = "127.0.0.1", runner: Runner | None = None
) -> FastAPI:
    """The dashboard over ``settings.state_dir``. Without ``VMT_API_TOKEN`` it is open, so it
    refuses to be built for an address other than loopback (raises ``ConfigError``). On
    loopback it answers only loopback Host names (and ``VMT_ALLOWED_HOSTS``): DNS rebinding is
    refused."""
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    if not token and not is_loopback(host):
        raise ConfigError(
            f"vmt ui on {host}: set VMT_API_TOKEN first (without it anyone who reaches the "
            "address could see and cancel runs); 127.0.0.1 needs no token"
        )
    if runner is None:
        from vmt.backends.factory import build_backends

        runner = Runner(settings, backends_factory=build_backends)
    from vmt.service.pipeline_runs import PipelineRunService
    from vmt.service.worker import RunWorker

    worker = RunWorker(PipelineRunService(settings, runner=runner))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker.start()
        try:
            yield
        finally:
            worker.stop()

    app = FastAPI(
        title="vmt ui", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan
    )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    install_dashboard(
        app,
        store=runner.store,
        actions=RunnerActions(runner, worker.submit),
        token=token or None,
        session_hours=settings.session_hours,
        remote_images=run_image_reader(settings),
    )
    install_guards(
        app,
        timeout_s=settings.request_body_timeout_s,
        hosts=allowed_host_names(host, settings.allowed_hosts),
    )
    return app
