"""Logging for long-running commands (``vmt serve``): one line per record, JSON when
``VMT_LOG_JSON=1`` (Cloud Run / Cloud Logging read ``severity`` and ``message``).

Secrets are redacted as a last line of defence: any configured secret value that reaches a
formatted record (message, exception text or extra field) is replaced by ``***``, and URLs
lose their user-info and query string (``vmt.formats.image_uri.redact_urls``: signed URLs carry
their credentials there, and libraries such as httpx and urllib3 log whole URLs); code must never
log them in the first place.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson

from vmt.formats.image_uri import redact_urls

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class SecretRedactor(logging.Filter):
    """Replaces each secret value in a record's message, exception text and extra fields with
    ``***`` and strips credentials from URLs in them."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return redact_urls(text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
            record.exc_info = None  # formatters would render the raw traceback again
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


def protect_last_resort(secret_env: Iterable[str]) -> None:
    """Redact what Python's last-resort handler prints (warnings when logging is not
    configured, as in the CLI): URL credentials, and the values of the environment variables
    ``secret_env`` (``vmt.config.secret_env_names()``)."""
    import os

    if logging.lastResort is not None and not any(
        isinstance(f, SecretRedactor) for f in logging.lastResort.filters
    ):
        secrets = (os.environ.get(name, "") for name in secret_env)
        logging.lastResort.addFilter(SecretRedactor(secrets))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, severity, logger, message, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


def configure_logging(
    *, json: bool, level: int = logging.INFO, secrets: Iterable[str] = ()
) -> None:
    """Route every logger (``vmt``, ``uvicorn``...) to stderr in one format."""
    handler = logging.StreamHandler(sys.stderr)
    if json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretRedactor(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
