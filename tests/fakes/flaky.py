"""A loopback HTTP proxy in front of a fake (or the GCS emulator) that records every exchange and
can make the backend flaky.

``FaultProxy(upstream).start()`` listens on a free 127.0.0.1 port and forwards each request to
``upstream``. With ``rate > 0`` it answers that share of requests (drawn from a seeded
``random.Random``, so a campaign is repeatable) with one of the fault ``kinds``:

- ``429``: a rate-limit answer, body in the upstream's style (Google JSON error or Labelbox's);
- ``503``: service unavailable;
- ``reset``: the connection is reset (RST) without an answer;
- ``slow``: the request IS forwarded (the backend acts on it), then the answer is held for
  ``slow_seconds`` (longer than the client's timeout) and the connection closed unanswered: the
  client cannot know whether its request took effect.

``down = True`` makes every request fail (``down_kind``) until it is set back. ``exchanges``
holds (method, path, status, response body) of every answer that came from upstream; ``faults``
counts the injected ones by kind.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

KINDS = ("429", "503", "reset", "slow")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.0,
        kinds: tuple[str, ...] = KINDS,
        seed: int = 0,
        slow_seconds: float = 3.0,
        style: str = "google",
        record: bool = True,
        spare: tuple[str, ...] = (),
    ) -> None:
        """``style``: "google" or "labelbox" (the shape of an injected error body).
        ``spare``: path substrings never faulted (e.g. a test's own look-ups)."""
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.rate = rate
        self.kinds = kinds
        self.slow_seconds = slow_seconds
        self.style = style
        self.record = record
        self.spare = spare
        self.down = False
        self.on_request: Callable[[str, str], None] | None = None
        """Called with (method, path) before a request is forwarded (the kill campaign counts
        external calls with it and kills the client at one)."""
        self.down_kind = "503"
        self.exchanges: list[Exchange] = []
        self.faults: Counter[str] = Counter()
        self.forwarded = 0
        self._rng = random.Random(seed)
        self._planned: list[list[Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle --

    def start(self) -> FaultProxy:
        handler = type("_Bound", (_Handler,), {"proxy": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "call start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- decisions --

    def inject(self, method: str, path_part: str, kind: str, *, times: int = 1) -> None:
        """Answer the next ``times`` ``method`` requests whose path holds ``path_part`` with
        ``kind`` (before any random draw)."""
        with self._lock:
            self._planned.append([method, path_part, kind, times])

    def draw(self, path: str, method: str = "GET") -> str | None:
        """The fault for this request, or None to forward it."""
        with self._lock:
            planned = next(
                (p for p in self._planned if p[3] > 0 and p[0] == method and p[1] in path), None
            )
            if planned is not None:
                planned[3] -= 1
                kind: str | None = planned[2]
            elif self.down:
                kind = self.down_kind
            elif any(s in path for s in self.spare) or self.rate <= 0:
                kind = None
            else:
                kind = self._rng.choice(self.kinds) if self._rng.random() < self.rate else None
            if kind is not None:
                self.faults[kind] += 1
            return kind

    def error_body(self, status: int) -> bytes:
        if self.style == "labelbox":
            return json.dumps({"message": f"injected {status}"}).encode()
        code = "RESOURCE_EXHAUSTED" if status == 429 else "UNAVAILABLE"
        return json.dumps(
            {"error": {"code": status, "message": f"injected {status}", "status": code}}
        ).encode()

    def forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        try:
            conn.request(method, path, body=body, headers=dict(headers))
            response = conn.getresponse()
            data = response.read()
            out_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            result = (response.status, response.reason, out_headers, data)
        finally:
            conn.close()
        with self._lock:
            self.forwarded += 1
            if self.record:
                content_type = dict((k.lower(), v) for k, v in out_headers).get("content-type", "")
                self.exchanges.append(Exchange(method, path, result[0], content_type, data))
        return result


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection we reset on purpose (or the client dropped) is not an error."""
        if not isinstance(sys.exc_info()[1], OSError | ValueError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        proxy = self.proxy
        body = self._body()
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        if proxy.on_request is not None:
            proxy.on_request(self.command, self.path)
        kind = proxy.draw(self.path, self.command)
        if kind in ("429", "503"):
            self._answer(int(kind), proxy.error_body(int(kind)), "application/json")
            return
        if kind == "reset":
            self._reset()
            return
        status, reason, out_headers, data = proxy.forward(self.command, self.path, headers, body)
        if kind == "slow":
            time.sleep(proxy.slow_seconds)
            self._reset()
            return
        self.send_response(status, reason)
        for key, value in out_headers:
            if key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()
