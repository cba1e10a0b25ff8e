"""Every error the service answers is JSON ``{"error": code, "detail": message}``.

Domain errors (``VmtError``) map to a status by kind; anything unexpected is logged with its
traceback and answered as a JSON 500 without internals. Never an HTML error page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vmt.errors import (
    AuthError,
    BackendError,
    ConfigError,
    InputError,
    NotFoundError,
    RunConflictError,
    VmtError,
)

log = logging.getLogger("vmt")


class ApiError(Exception):
    """An HTTP error answered as JSON with a machine-readable ``code``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})


ERROR_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    "required": ["error", "detail"],
}


def error_response(status: int, code: str, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _vmt_status(exc: VmtError) -> tuple[int, str]:
    if isinstance(exc, InputError):
        return 400, "invalid_input"
    if isinstance(exc, RunConflictError):
        return 409, "conflict"
    if isinstance(exc, NotFoundError):
        return 404, "not_found"
    if isinstance(exc, AuthError):
        return 502, "backend_auth"
    if isinstance(exc, BackendError):
        return (503 if exc.retryable else 502), "backend_error"
    if isinstance(exc, ConfigError):
        return 500, "configuration"
    return 500, "run_error"


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.detail, **exc.headers)

    async def on_vmt_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, VmtError)
        status, code = _vmt_status(exc)
        log.warning("%s %s -> %d %s", request.method, request.url.path, status, exc.message)
        return error_response(status, code, exc.message)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), **headers)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
            for err in exc.errors()
        )
        return error_response(422, "invalid_request", problems or "invalid request")

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "internal error; see the service log")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(VmtError, on_vmt_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
