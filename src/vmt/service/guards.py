"""What stands in front of every route of ``vmt serve`` and ``vmt ui``, before any handler runs:

- ``BoundedBodies``: a body size limit per route, counted while the body streams in (a declared
  ``Content-Length`` over it is refused before a byte is read), and a deadline for the whole
  body; over the limit: 413, too slow: 408, both with ``Connection: close``. Nothing is
  buffered beyond the limit, so an unauthenticated client cannot make the process hold more.
- ``SecurityHeaders``: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin``
  (no referrer to another site; not ``no-referrer``, under which a browser sends
  ``Origin: null`` with our own form posts and the dashboard's same-origin check refuses them),
  ``X-Frame-Options: DENY`` and a ``frame-ancestors 'none'`` Content-Security-Policy on every
  answer that sets none of its own (pages with their own policy keep it; the dashboard's says
  ``frame-ancestors 'none'`` too, the run report's ``'self'``: ``SAMEORIGIN``).
- ``host_guard``: starlette's ``TrustedHostMiddleware`` for a loopback server (``vmt ui``,
  ``vmt serve --host 127.0.0.1``) or ``VMT_ALLOWED_HOSTS``: a page on another site that
  rebinds its name to 127.0.0.1 is answered 400, never served.

Pure ASGI: no request object, no body copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from collections.abc import Callable, Sequence

from fastapi import FastAPI
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WEBHOOK_BODY_BYTES = 64 * 1024
"""Labelbox's webhook bodies (``/model_run``, ``/models``)."""
FORM_BODY_BYTES = 4 * 1024
"""Dashboard forms (login, cancel, resume): a token and a CSRF field."""
API_BODY_BYTES = 16 * 1024
"""Every other route (the runs API's JSON)."""
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")


def body_limit(path: str) -> int:
    """The largest body, in bytes, a request to ``path`` may carry."""
    if path in ("/model_run", "/models"):
        return WEBHOOK_BODY_BYTES
    if path.startswith("/ui/"):
        return FORM_BODY_BYTES
    return API_BODY_BYTES


class _Cut(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


async def _answer(send: Send, cut: _Cut) -> None:
    body = json.dumps({"error": cut.code, "detail": cut.detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": cut.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BoundedBodies:
    """ASGI middleware: bodies at most ``limit_for(path)`` bytes, read within ``timeout_s``
    seconds of the first read (413 / 408 otherwise, answered whatever the route would have)."""

    def __init__(
        self, app: ASGIApp, *, timeout_s: float, limit_for: Callable[[str], int] = body_limit
    ) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            too_large = declared.isdigit()
            await _answer(
                send,
                _Cut(413, "too_large", f"body larger than {limit} bytes")
                if too_large
                else _Cut(400, "bad_request", "invalid Content-Length"),
            )
            return
        body = _BodyReader(receive, limit, self.timeout_s)
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if body.cut is not None:
                return  # the route's answer to a cut body is replaced by ours
            started = True
            await send(message)

        with contextlib.suppress(_Cut):
            await self.app(scope, body.receive, guarded_send)
        if body.cut is not None and not started:
            await _answer(send, body.cut)


class _BodyReader:
    def __init__(self, receive: Receive, limit: int, timeout_s: float) -> None:
        self._receive = receive
        self._limit = limit
        self._timeout_s = timeout_s
        self._read = 0
        self._deadline: float | None = None
        self._done = False
        self.cut: _Cut | None = None

    async def receive(self) -> Message:
        if self.cut is not None:
            raise self.cut
        if self._done:
            return await self._receive()
        loop = asyncio.get_running_loop()
        if self._deadline is None:
            self._deadline = loop.time() + self._timeout_s
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            self.cut = _Cut(408, "timeout", f"body not received within {self._timeout_s:g} s")
            raise self.cut from None
        if message["type"] == "http.request":
            self._read += len(message.get("body", b""))
            if self._read > self._limit:
                self.cut = _Cut(413, "too_large", f"body larger than {self._limit} bytes")
                raise self.cut
            self._done = not message.get("more_body", False)
        else:
            self._done = True
        return message


_FRAMING_POLICY = "frame-ancestors 'none'"


class SecurityHeaders:
    """ASGI middleware adding ``nosniff``, ``same-origin`` and no-framing headers to every
    answer (a page's own Content-Security-Policy is kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                policy = b"".join(v for n, v in headers if n.lower() == b"content-security-policy")
                same_origin = b"frame-ancestors 'self'" in policy
                for name, value in (
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"SAMEORIGIN" if same_origin else b"DENY"),
                    (b"content-security-policy", _FRAMING_POLICY.encode()),
                ):
                    if name not in present:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.1``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_host_names(bound: str, extra: Sequence[str]) -> list[str] | None:
    """The ``Host`` names a server bound to ``bound`` answers: loopback names for a loopback
    address, plus ``extra`` (``VMT_ALLOWED_HOSTS``); None (any) for another address without
    ``extra``."""
    names = list(extra)
    if is_loopback(bound):
        names.extend(LOOPBACK_NAMES)
        if bound not in names:
            names.append(bound)
    return names or None


def install_guards(app: FastAPI, *, timeout_s: float, hosts: Sequence[str] | None) -> None:
    """Put every guard in front of ``app``: Host check (outermost, when ``hosts``), body
    limits and deadline, security headers."""
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BoundedBodies, timeout_s=timeout_s)
    if hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts), www_redirect=False)
