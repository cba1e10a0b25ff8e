"""The Labelbox "Train model" contract (FORMATS.md 1.4): ``GET /models``, ``POST /model_run``.

Order of checks on every request, before any byte of the body is interpreted:
signature header shaped ``sha1=<40 hex>`` (401) -> declared size <= 64 KiB (413) -> body read
with a cap (413) -> HMAC-SHA1 of the raw body (401). Only then is the JSON parsed (400) and the
model type checked against what ``/models`` offers (422).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vmt.service.deliveries import DeliveryStore
from vmt.service.http_errors import ERROR_SCHEMA, ApiError
from vmt.service.runs import RunService
from vmt.service.signature import SIGNATURE_HEADER, looks_like_signature, signature_matches
from vmt.service.worker import RunWorker

log = logging.getLogger("vmt")

MAX_BODY_BYTES = 64 * 1024
_MAX_ID_LENGTH = 200


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


_SIGNED_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("Missing or wrong X-Hub-Signature."),
    413: _error("Body larger than 64 KiB."),
}


async def read_signed_body(request: Request, secret: bytes | None) -> bytes:
    """The raw body, read with a 64 KiB cap and verified against ``secret`` (None: insecure)."""
    header = request.headers.get(SIGNATURE_HEADER)
    if secret is not None and not looks_like_signature(header):
        raise ApiError(401, "bad_signature", f"missing or malformed {SIGNATURE_HEADER}")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad_request", "invalid Content-Length")
        if int(declared) > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"body larger than {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"body larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if secret is not None and not signature_matches(secret, body, header):
        raise ApiError(401, "bad_signature", f"{SIGNATURE_HEADER} does not match the body")
    return body


def _valid_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= _MAX_ID_LENGTH
        and value.isprintable()
        and not any(ch.isspace() for ch in value)
    )


def parse_model_run_request(body: bytes, offered: Sequence[str]) -> tuple[str, str, str | None]:
    """``(model_run_id, model_type, model_id)`` from a verified body, or an ApiError."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", "body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_json", "body must be a JSON object")
    model_run_id = payload.get("modelRunId")
    if not _valid_id(model_run_id):
        raise ApiError(400, "missing_model_run_id", "modelRunId must be a non-empty id string")
    model_type = payload.get("modelType")
    if not isinstance(model_type, str) or model_type not in offered:
        raise ApiError(
            422,
            "unknown_model_type",
            f"modelType must be one of: {', '.join(offered) or '(none offered)'}",
        )
    model_id = payload.get("modelId")
    assert isinstance(model_run_id, str)
    return model_run_id, model_type, (model_id if _valid_id(model_id) else None)


def webhook_router(
    *,
    secret: bytes | None,
    model_types: Sequence[str],
    deliveries: DeliveryStore,
    runs: RunService,
    worker: RunWorker | None,
) -> APIRouter:
    router = APIRouter(tags=["labelbox"])
    offered = list(model_types)
    signature_param = Header(
        default=None,
        alias=SIGNATURE_HEADER,
        description="sha1= + hex HMAC-SHA1 of the raw body with VMT_WEBHOOK_SECRET.",
    )

    @router.get(
        "/models",
        summary="Model types offered in Labelbox's Train model menu",
        responses={
            200: {
                "description": "One key per model type.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {name: {"type": "object"} for name in offered},
                        }
                    }
                },
            },
            **_SIGNED_ERRORS,
        },
    )
    async def get_models(
        request: Request, x_hub_signature: str | None = signature_param
    ) -> JSONResponse:
        await read_signed_body(request, secret)
        return JSONResponse({name: {} for name in offered})

    @router.post(
        "/model_run",
        summary="Start training for a Labelbox model run (idempotent per modelRunId)",
        status_code=202,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["modelRunId", "modelType"],
                            "properties": {
                                "modelId": {"type": "string"},
                                "modelRunId": {"type": "string", "maxLength": _MAX_ID_LENGTH},
                                "modelType": {"type": "string", "enum": offered},
                            },
                        }
                    }
                },
            }
        },
        responses={
            200: {"description": "Repeated delivery: the run created earlier, nothing started."},
            202: {
                "description": "A new run was created and queued.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["run_id", "model_run_id", "status"],
                            "properties": {
                                "run_id": {"type": "string"},
                                "model_run_id": {"type": "string"},
                                "status": {"type": "string"},
                            },
                        }
                    }
                },
            },
            400: _error("Invalid JSON or a missing modelRunId."),
            **_SIGNED_ERRORS,
            422: _error("A modelType that /models does not offer."),
        },
    )
    async def post_model_run(
        request: Request, x_hub_signature: str | None = signature_param
    ) -> JSONResponse:
        body = await read_signed_body(request, secret)
        model_run_id, model_type, model_id = parse_model_run_request(body, offered)

        def start(run_id: str) -> None:
            runs.start_run(
                run_id, model_run_id=model_run_id, model_type=model_type, model_id=model_id
            )

        def create_or_get() -> tuple[str, bool, str]:
            run_id, created = deliveries.create_or_get(
                model_run_id=model_run_id,
                model_type=model_type,
                model_id=model_id,
                new_run_id=runs.new_run_id,
                start=start,
            )
            return run_id, created, runs.run_state(run_id) or "unknown"

        run_id, created, status = await run_in_threadpool(create_or_get)
        if created:
            log.info(
                "model run %s: created run %s (%s, delivery %s)",
                model_run_id,
                run_id,
                model_type,
                request.headers.get("X-Labelbox-Id", "-"),
            )
            if worker is not None:
                worker.submit(run_id)
        return JSONResponse(
            {"run_id": run_id, "model_run_id": model_run_id, "status": status},
            status_code=202 if created else 200,
        )

    return router
