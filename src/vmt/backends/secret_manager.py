"""Secrets from Google Secret Manager, for processes whose environment cannot carry them.

Vertex AI pipeline steps get no environment from Secret Manager (Cloud Run does,
``--set-secrets``), so a step reads the Labelbox API key itself: ``VMT_LABELBOX_API_KEY_SECRET``
names the secret version (``projects/P/secrets/labelbox-api-key/versions/latest``), a resource
name and not a secret, and the step's service account needs ``roles/secretmanager.secretAccessor``.
REST ``GET /v1/{name}:access`` through google-auth's ``AuthorizedSession``; the value is never
logged or put in an error.
"""

from __future__ import annotations

import base64
import binascii
import logging

from pydantic import SecretStr

from vmt.config import Settings
from vmt.errors import AuthError, BackendError, ConfigError, NotFoundError

log = logging.getLogger("vmt")

DEFAULT_ENDPOINT = "https://secretmanager.googleapis.com"


def access_secret(name: str, settings: Settings) -> SecretStr:
    """The payload of secret version ``name`` (UTF-8). Raises ``AuthError`` (401/403),
    ``NotFoundError`` (404), ``BackendError`` (other failures; 429/5xx retryable)."""
    from google.auth.transport.requests import AuthorizedSession

    from vmt.backends.gcp_credentials import gcp_credentials

    if not name.startswith("projects/") or "/secrets/" not in name:
        raise ConfigError(f"secret name {name!r} is not projects/P/secrets/NAME/versions/VERSION")
    endpoint = (settings.secret_manager_endpoint or DEFAULT_ENDPOINT).rstrip("/")
    session = AuthorizedSession(gcp_credentials(settings))  # type: ignore[no-untyped-call]
    try:
        response = session.get(f"{endpoint}/v1/{name}:access", timeout=30)
    except OSError as exc:
        raise BackendError(f"Secret Manager unreachable reading {name}", retryable=True) from exc
    finally:
        session.close()  # type: ignore[no-untyped-call]
    if response.status_code in (401, 403):
        raise AuthError(f"not allowed to read secret {name} (needs secretmanager.secretAccessor)")
    if response.status_code == 404:
        raise NotFoundError(f"secret {name} does not exist")
    if response.status_code != 200:
        raise BackendError(
            f"Secret Manager answered {response.status_code} reading {name}",
            retryable=response.status_code == 429 or response.status_code >= 500,
        )
    try:
        value = base64.b64decode(response.json()["payload"]["data"]).decode("utf-8")
    except (KeyError, ValueError, binascii.Error) as exc:
        raise BackendError(f"Secret Manager answer for {name} has no payload") from exc
    log.info("read secret %s from Secret Manager", name)
    return SecretStr(value)


def with_secrets(settings: Settings) -> Settings:
    """``settings`` with the Labelbox API key read from Secret Manager when the environment
    has none and ``labelbox_api_key_secret`` names one."""
    if settings.labelbox_api_key is not None or not settings.labelbox_api_key_secret:
        return settings
    key = access_secret(settings.labelbox_api_key_secret, settings)
    return settings.model_copy(update={"labelbox_api_key": key})
