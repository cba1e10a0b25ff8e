"""The runs API (bearer token) and the health probes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vmt.errors import VmtError
from vmt.service.deliveries import DeliveryStore
from vmt.service.http_errors import ERROR_SCHEMA, ApiError, error_response
from vmt.service.runs import RunService

_RUN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["run_id", "state"],
    "properties": {"run_id": {"type": "string"}, "state": {"type": "string"}},
    "additionalProperties": True,
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


def _run_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _RUN_SCHEMA}}}


_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: _error("Missing or wrong bearer token.")}
_RUN_ID = Path(min_length=1, max_length=200, description="The run id returned by /model_run.")


def runs_router(*, runs: RunService, require_token: Callable[..., None]) -> APIRouter:
    router = APIRouter(tags=["runs"], dependencies=[Depends(require_token)])

    @router.get(
        "/runs",
        summary="Recent runs, newest first",
        responses={
            200: {
                "description": "Runs.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"runs": {"type": "array", "items": _RUN_SCHEMA}},
                        }
                    }
                },
            },
            **_UNAUTHORIZED,
        },
    )
    async def list_runs(limit: int = Query(50, ge=1, le=1000)) -> JSONResponse:
        found = await run_in_threadpool(lambda: runs.list_runs(limit=limit))
        return JSONResponse({"runs": [dict(view) for view in found]})

    @router.get(
        "/runs/{run_id}",
        summary="One run: stages, timings, handles, errors, metrics summary",
        responses={
            200: _run_response("The run."),
            **_UNAUTHORIZED,
            404: _error("No such run."),
        },
    )
    async def get_run(run_id: str = _RUN_ID) -> JSONResponse:
        view = await run_in_threadpool(runs.get_run, run_id)
        if view is None:
            raise ApiError(404, "not_found", f"no run {run_id}")
        return JSONResponse(dict(view))

    @router.post(
        "/runs/{run_id}/cancel",
        summary="Cancel a run (and its external jobs)",
        responses={
            200: _run_response("The run, cancelled."),
            **_UNAUTHORIZED,
            404: _error("No such run."),
            409: _error("The run has already finished."),
        },
    )
    async def cancel_run(run_id: str = _RUN_ID) -> JSONResponse:
        view = await run_in_threadpool(runs.cancel, run_id)
        return JSONResponse(dict(view))

    return router


def health_router(*, deliveries: DeliveryStore, runs: RunService) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="The run store is reachable",
        responses={503: _error("The run store cannot be reached.")},
    )
    async def readyz() -> JSONResponse:
        def check() -> None:
            deliveries.ping()
            runs.check_ready()

        try:
            await run_in_threadpool(check)
        except VmtError as exc:
            return error_response(503, "not_ready", exc.message)
        return JSONResponse({"status": "ready"})

    return router
