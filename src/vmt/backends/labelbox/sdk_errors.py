"""Which Labelbox SDK failures are worth retrying, and how each becomes a ``VmtError``.

The SDK raises ``lbox.exceptions.*`` for GraphQL calls and plain ``requests`` errors for the file
downloads it does itself (export chunks, import status files). Both are translated here, once,
with messages that say what failed and what to do, and never contain the API key.
"""

from __future__ import annotations

import builtins

from vmt.errors import AuthError, BackendError, NotFoundError, VmtError

_RETRYABLE_SDK_ERRORS = ("ApiLimitError", "InternalServerError", "NetworkError", "TimeoutError")
_MAX_DETAIL = 300


def is_retryable(exc: BaseException) -> bool:
    """Rate limits, 5xx, network errors and timeouts: worth another try after a pause."""
    import requests
    from lbox import exceptions as lbx

    if isinstance(exc, lbx.LabelboxError):
        if type(exc).__name__ in _RETRYABLE_SDK_ERRORS:
            return True
        # The SDK knows a rate limit only by Labelbox's own wording; a 429 or 408 from a gateway
        # on the way (or any non-JSON answer, such as a proxy's error page) is a plain
        # LabelboxError "429 Too Many Requests" / "Failed to parse response as JSON".
        message = str(exc.message if hasattr(exc, "message") else exc)
        return message.startswith(("429 ", "408 ", "Failed to parse response as JSON"))
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else None
        return status is None or status == 429 or status >= 500
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return True
    return isinstance(exc, builtins.TimeoutError | ConnectionError)


def translate(
    exc: BaseException,
    *,
    what: str,
    model_run_id: str,
    secret: str | None,
    run_id: str | None = None,
) -> VmtError:
    """The ``VmtError`` to raise (``from exc``) for an SDK failure while doing ``what``."""
    from lbox import exceptions as lbx

    if isinstance(exc, VmtError):
        return exc
    detail = redact(_one_line(exc), secret)
    if isinstance(exc, lbx.AuthenticationError):
        return AuthError(
            f"LABELBOX_API_KEY is not valid for model run {model_run_id}: Labelbox rejected it "
            f"during {what}; create a new API key in Labelbox and set LABELBOX_API_KEY",
            run_id=run_id,
        )
    if isinstance(exc, lbx.AuthorizationError):
        return AuthError(
            f"LABELBOX_API_KEY has no access to model run {model_run_id} ({what}): use a key of "
            f"the workspace that owns the model run",
            run_id=run_id,
        )
    if isinstance(exc, lbx.ResourceNotFoundError):
        return NotFoundError(
            f"Labelbox has no {what} for model run {model_run_id}: check the model run id "
            f"and that the API key belongs to its workspace ({detail})",
            run_id=run_id,
        )
    if is_retryable(exc):
        return BackendError(
            f"Labelbox kept failing during {what} for model run {model_run_id} "
            f"({type(exc).__name__}: {detail}); try again later",
            retryable=True,
            run_id=run_id,
        )
    return BackendError(
        f"Labelbox {what} failed for model run {model_run_id}: {type(exc).__name__}: {detail}",
        retryable=False,
        run_id=run_id,
    )


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of the secret replaced."""
    if secret:
        text = text.replace(secret, "***")
    return text


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
