"""Bearer-token protection of the runs API (``Authorization: Bearer $VMT_API_TOKEN``)."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vmt.service.http_errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="The value of VMT_API_TOKEN.")


def token_guard(token: str | None) -> Callable[..., None]:
    """A dependency that rejects requests without the token; allows all when ``token`` is None."""

    def require_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> None:
        if token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8")):
            raise ApiError(
                401,
                "unauthorized",
                "missing or wrong bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_token
