"""Running the app under uvicorn with the package's logging (``vmt serve``)."""

from __future__ import annotations

import logging

import uvicorn

from vmt.config import Settings
from vmt.errors import ConfigError
from vmt.logs import configure_logging
from vmt.service.app import create_app

log = logging.getLogger("vmt")


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret value in ``settings`` (for log redaction)."""
    values = (settings.labelbox_api_key, settings.webhook_secret, settings.api_token)
    return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


def check_serve_settings(settings: Settings, *, insecure: bool) -> None:
    """Raise one ConfigError naming every setting ``vmt serve`` needs and lacks."""
    needed = ["labelbox_api_key"] if insecure else ["webhook_secret", "labelbox_api_key"]
    try:
        settings.require(*needed)
    except ConfigError as exc:
        hint = "" if insecure else " (--insecure accepts unsigned webhooks, NOT safe)"
        raise ConfigError(f"vmt serve: {exc.message}{hint}") from exc


def serve_forever(
    settings: Settings, *, host: str, port: int, workers: int, insecure: bool
) -> None:
    """Validate the settings, build the app and serve until SIGINT/SIGTERM."""
    configure_logging(json=settings.log_json, secrets=configured_secrets(settings))
    check_serve_settings(settings, insecure=insecure)
    app = create_app(settings, insecure=insecure, worker_threads=workers)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    log.info("vmt serve on http://%s:%d (state dir %s)", host, port, settings.state_dir)
    uvicorn.Server(config).run()
