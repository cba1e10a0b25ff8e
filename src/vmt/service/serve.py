"""Running the app under uvicorn with the package's logging (``vmt serve``)."""

from __future__ import annotations

import logging

import uvicorn

from vmt.config import Settings, configured_secrets
from vmt.errors import ConfigError
from vmt.logs import configure_logging
from vmt.service.app import create_app
from vmt.service.guards import allowed_host_names

log = logging.getLogger("vmt")


def check_serve_settings(settings: Settings, *, insecure: bool) -> None:
    """Raise one ConfigError naming every setting ``vmt serve`` needs and lacks."""
    needed = ["labelbox_api_key"] if insecure else ["webhook_secret", "labelbox_api_key"]
    try:
        settings.require(*needed)
    except ConfigError as exc:
        hint = "" if insecure else " (--insecure accepts unsigned webhooks, NOT safe)"
        raise ConfigError(f"vmt serve: {exc.message}{hint}") from exc


def check_pipelines_settings(settings: Settings, *, insecure: bool) -> None:
    """``vmt serve --orchestrator vertex-pipelines`` submits jobs: it needs the project, region,
    bucket (pipeline root) and the pipeline's image or template; the Labelbox key is the
    steps' (docs/deploy.md), not this process's."""
    needed = ["gcp_project", "gcp_region"]
    if not settings.pipeline_root:
        needed.append("gcs_bucket")
    if not settings.pipeline_template:
        needed.append("pipeline_image")
    if not insecure:
        needed.append("webhook_secret")
    try:
        settings.require(*needed)
    except ConfigError as exc:
        raise ConfigError(f"vmt serve --orchestrator vertex-pipelines: {exc.message}") from exc


def serve_forever(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int,
    insecure: bool,
    orchestrator: str = "local",
) -> None:
    """Validate the settings, build the app and serve until SIGINT/SIGTERM. With the
    ``vertex-pipelines`` orchestrator the app is stateless (``service.pipelines_app``). Bound to
    loopback it answers only loopback Host names (and ``VMT_ALLOWED_HOSTS``); the forwarded
    scheme and client address are believed only from ``VMT_TRUSTED_PROXIES``."""
    configure_logging(json=settings.log_json, secrets=configured_secrets(settings))
    hosts = allowed_host_names(host, settings.allowed_hosts)
    if orchestrator == "vertex-pipelines":
        from vmt.service.pipelines_app import create_pipelines_app

        check_pipelines_settings(settings, insecure=insecure)
        app = create_pipelines_app(settings, insecure=insecure, allowed_hosts=hosts)
    else:
        check_serve_settings(settings, insecure=insecure)
        app = create_app(settings, insecure=insecure, worker_threads=workers, allowed_hosts=hosts)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    where = (
        "runs on Vertex AI Pipelines, no local state"
        if orchestrator == "vertex-pipelines"
        else f"state dir {settings.state_dir}"
    )
    log.info("vmt serve on http://%s:%d (%s)", host, port, where)
    uvicorn.Server(config).run()
