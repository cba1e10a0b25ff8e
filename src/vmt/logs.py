"""Logging for long-running commands (``vmt serve``): one line per record, JSON when
``VMT_LOG_JSON=1`` (Cloud Run / Cloud Logging read ``severity`` and ``message``).

Secrets are redacted as a last line of defence: any configured secret value that reaches a
formatted record (message, exception text or extra field) is replaced by ``***``, and the query
string of every URL (where a signed URL carries its credentials; libraries such as httpx and
urllib3 log whole URLs) by ``...``. Code must never log them in the first place.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


_URL_QUERY = re.compile(r"\?[^\s'\"<>?#]*=[^\s'\"<>#]*")
"""A query string with a parameter (``?X-Goog-Signature=...``), absolute URL or bare path."""


class SecretRedactor(logging.Filter):
    """Replaces each secret value in a record's message, exception text and extra fields with
    ``***``, and every URL query string with ``?...``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _URL_QUERY.sub("?...", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
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


def configure_cli_logging() -> None:
    """For one-shot commands (``vmt run``...): warnings and errors of every logger to stderr as
    bare messages (as Python's last-resort handler prints them), through the redactor, with the
    secrets found in the environment. Leaves logging alone when a handler is already installed."""
    import os

    root = logging.getLogger()
    if root.handlers:
        return
    names = ("LABELBOX_API_KEY", "VMT_LABELBOX_API_KEY", "VMT_WEBHOOK_SECRET", "VMT_API_TOKEN")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(SecretRedactor(os.environ.get(name, "") for name in names))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
