"""Redaction never raises: a log record whose text only looks like a URL (uvicorn's coloured
start message) must not crash the server that logs it (`vmt ui`, `vmt serve`)."""

from __future__ import annotations

import logging

from vmt.formats.image_uri import redact
from vmt.logs import SecretRedactor


def test_unparsable_url_text_is_kept_or_cut_never_raises() -> None:
    assert redact("%s://%s:%d\x1b[0m") == "%s://%s:%d\x1b[0m"
    shown = redact("https://user:secret-pw@[bad/x?sig=signature")
    assert "secret-pw" not in shown and "signature" not in shown


def test_uvicorn_start_message_passes_the_redactor() -> None:
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1,
        "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)", ("http", "127.0.0.1", 8765), None,
    )  # fmt: skip
    record.color_message = "Uvicorn running on \x1b[1m%s://%s:%d\x1b[0m (Press CTRL+C to quit)"
    assert SecretRedactor(["secret-value"]).filter(record)
    assert record.getMessage() == "Uvicorn running on http://127.0.0.1:8765 (Press CTRL+C to quit)"
