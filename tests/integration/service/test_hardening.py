"""The service's guards over a live uvicorn on 127.0.0.1: bodies bounded on every route while
they are read (413) and cut when slow (408), the token checked before a body is parsed, Host
names checked (DNS rebinding), framing and sniffing headers on every answer, sessions that end
at logout, and the Secure cookie believed only from a trusted proxy."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from tests.fakes.run_service import FakeRuns
from tests.integration.service.live_server import serve_in_thread
from vmt.config import Settings, load_settings
from vmt.service.app import create_app
from vmt.service.dashboard.local_app import create_ui_app
from vmt.service.signature import sign

SECRET = "whsec-hardening-0123456789"
TOKEN = "api-token-hardening-abcdef"
MODEL_TYPES = ("local_object_detection",)

# (method, path, limit): every kind of route, with the limit its body is held to.
ROUTES = [
    ("POST", "/model_run", 64 * 1024),
    ("GET", "/models", 64 * 1024),
    ("POST", "/ui/login", 4 * 1024),
    ("POST", "/ui/runs/run-0001/cancel", 4 * 1024),
    ("POST", "/runs/run-0001/select", 16 * 1024),
    ("POST", "/runs/run-0001/prelabel", 16 * 1024),
    ("POST", "/runs/run-0001/cancel", 16 * 1024),
    ("GET", "/healthz", 16 * 1024),
]
UNREAD = {"/runs/run-0001/cancel", "/healthz"}
"""Routes that never read a body: they answer at once (the rest of the body is never held)."""


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return load_settings(
        webhook_secret=SECRET,
        api_token=TOKEN,
        state_dir=tmp_path / "state",
        request_body_timeout_s=1.0,
        **extra,
    )


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    app = create_app(
        _settings(tmp_path), runner=FakeRuns(), model_types=MODEL_TYPES, run_worker=False
    )
    with serve_in_thread(app) as base:
        yield base


def _raw(base: str, head: str, chunks: Sequence[bytes] = (), pause: float = 0.0) -> tuple[int, str]:
    """Send ``head`` then each chunk (``pause`` s apart) on one connection; (status, answer)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in chunks:
                time.sleep(pause)
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body was sent
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    text = answer.decode("latin-1")
    return int(text.split(" ", 2)[1]), text


def _head(method: str, path: str, *, length: int | None, base: str, cookie: str = "") -> str:
    """A request head with every credential the route wants (well-formed signature, bearer
    token, session cookie), so that the route would read the body."""
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {base.removeprefix('http://')}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n"
        f"X-Hub-Signature: sha1={'0' * 40}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Cookie: vmt_session={cookie}\r\n\r\n"
    )


def _chunked(body: bytes, size: int = 8192) -> list[bytes]:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts] + [b"0\r\n\r\n"]


@pytest.mark.parametrize(("method", "path", "limit"), ROUTES)
def test_oversized_bodies_are_refused_on_every_route(
    url: str, method: str, path: str, limit: int
) -> None:
    """Declared too large: 413 before a byte is read. Chunked (no length) and over the limit:
    413 once the limit is passed, whatever the route would have said (401, 404, 422)."""
    with httpx.Client() as client:
        cookie = _login(client, url)
    status, answer = _raw(url, _head(method, path, length=4 * 1024 * 1024, base=url))
    assert status == 413 and "connection: close" in answer.lower()
    head = _head(method, path, length=None, base=url, cookie=cookie)
    status, _ = _raw(url, head, _chunked(b"x" * (limit + 1)))
    assert status == (404 if path == "/runs/run-0001/cancel" else 200 if path in UNREAD else 413)
    status, _ = _raw(url, head, _chunked(b"x" * (limit - 10)))
    assert status != 413


@pytest.mark.parametrize(("method", "path", "_limit"), ROUTES)
def test_slow_bodies_are_cut(url: str, method: str, path: str, _limit: int) -> None:
    """A body trickling in past VMT_REQUEST_BODY_TIMEOUT_S (1 s here) is answered 408."""
    with httpx.Client() as client:
        cookie = _login(client, url)
    started = time.monotonic()
    head = _head(method, path, length=100, base=url, cookie=cookie)
    status, _ = _raw(url, head, [b"{"] * 3, pause=0.6)
    assert status == (404 if path == "/runs/run-0001/cancel" else 200 if path in UNREAD else 408)
    assert time.monotonic() - started < 5


def test_the_token_is_checked_before_the_body_is_parsed(url: str) -> None:
    for path in ("/runs/run-0001/select", "/runs/run-0001/prelabel"):
        response = httpx.post(url + path, content=b"{not json", headers={"Authorization": "x"})
        assert response.status_code == 401, response.text


def test_a_nul_byte_in_a_pool_name_is_a_422(url: str) -> None:
    response = httpx.post(
        url + "/runs/run-0001/select",
        json={"pool": "pool\x00.ndjson", "budget": 3},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("path", ["/healthz", "/ui/login", "/openapi.json", "/models", "/nope"])
def test_every_answer_forbids_framing_and_sniffing(url: str, path: str) -> None:
    response = httpx.get(url + path, headers={"X-Hub-Signature": sign(SECRET.encode(), b"")})
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] in ("DENY", "SAMEORIGIN")


def test_api_docs_are_off_by_default(url: str, tmp_path: Path) -> None:
    assert httpx.get(url + "/docs").status_code == 404
    assert httpx.get(url + "/redoc").status_code == 404
    assert httpx.get(url + "/openapi.json").status_code == 200


def test_vmt_ui_refuses_a_rebinding_host(tmp_path: Path) -> None:
    """A page on evil.example whose name now points at 127.0.0.1 sends Host: evil.example."""
    settings = load_settings(state_dir=tmp_path / "state")
    with serve_in_thread(create_ui_app(settings)) as base:
        port = base.rsplit(":", 1)[1]
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
            answer = httpx.get(base + "/ui/", headers={"Host": host})
            assert answer.status_code == 400, host
        for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
            assert httpx.get(base + "/ui/", headers={"Host": host}).status_code == 200


def test_a_loopback_serve_refuses_other_hosts_and_allows_configured_ones(tmp_path: Path) -> None:
    from vmt.service.guards import allowed_host_names

    settings = _settings(tmp_path, allowed_hosts="vmt.example.com")
    hosts = allowed_host_names("127.0.0.1", settings.allowed_hosts)
    app = create_app(
        settings, runner=FakeRuns(), model_types=MODEL_TYPES, run_worker=False, allowed_hosts=hosts
    )
    with serve_in_thread(app) as base:
        assert httpx.get(base + "/healthz", headers={"Host": "evil.example"}).status_code == 400
        assert httpx.get(base + "/healthz", headers={"Host": "vmt.example.com"}).status_code == 200
        assert httpx.get(base + "/healthz").status_code == 200
    assert allowed_host_names("0.0.0.0", []) is None


def _login(client: httpx.Client, base: str) -> str:
    response = client.post(
        base + "/ui/login", data={"token": TOKEN, "next": "/ui/"}, follow_redirects=False
    )
    assert response.status_code == 303
    return str(response.cookies["vmt_session"])


def test_an_old_session_is_refused_after_logout_and_each_login_is_new(url: str) -> None:
    with httpx.Client() as client:
        first = _login(client, url)
        second = _login(client, url)
    assert first != second
    page = httpx.get(url + "/ui/", cookies={"vmt_session": second}, follow_redirects=False)
    assert page.status_code == 200
    out = httpx.post(url + "/ui/logout", cookies={"vmt_session": second}, follow_redirects=False)
    assert out.status_code == 303
    after = httpx.get(url + "/ui/", cookies={"vmt_session": second}, follow_redirects=False)
    assert after.status_code == 303 and "/ui/login" in after.headers["location"]


def test_login_rotates_the_session_it_replaces(url: str) -> None:
    with httpx.Client() as client:
        old = _login(client, url)
        client.cookies.set("vmt_session", old)
        _login(client, url)
    replaced = httpx.get(url + "/ui/", cookies={"vmt_session": old}, follow_redirects=False)
    assert replaced.status_code == 303


@pytest.mark.parametrize(("trusted", "secure"), [("127.0.0.1", True), ("10.9.9.9", False)])
def test_the_cookie_is_secure_behind_a_trusted_proxy_only(
    tmp_path: Path, trusted: str, secure: bool
) -> None:
    """The proxy (here the test, on 127.0.0.1) says the browser used https."""
    app = create_app(
        _settings(tmp_path), runner=FakeRuns(), model_types=MODEL_TYPES, run_worker=False
    )
    with serve_in_thread(app, proxy_headers=True, forwarded_allow_ips=trusted) as base:
        response = httpx.post(
            base + "/ui/login",
            data={"token": TOKEN, "next": "/ui/"},
            headers={"X-Forwarded-Proto": "https"},
            follow_redirects=False,
        )
    assert response.status_code == 303
    flags = re.split(r";\s*", response.headers["set-cookie"].lower())
    assert ("secure" in flags) is secure


def test_a_run_created_by_a_process_that_died_is_resumed_at_start(tmp_path: Path) -> None:
    """The process died after creating the run, before marking its delivery started: at the
    next start the run is resumed, and a redelivery answers with it at once (no 503)."""
    import json
    import os
    import sqlite3
    import subprocess
    import sys

    from vmt.service.deliveries import DeliveryStore

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    settings = _settings(tmp_path)
    settings.state_dir.mkdir(parents=True)
    DeliveryStore(settings.state_dir / "service.db").close()
    with sqlite3.connect(settings.state_dir / "service.db") as db:
        db.execute(
            "INSERT INTO model_run_deliveries (model_run_id, run_id, model_type, claim,"
            " claimed_at, owner) VALUES ('mr-x', 'run-x', ?, 'c', ?, ?)",
            (MODEL_TYPES[0], time.time(), f"{socket.gethostname()}:{dead.pid}:old-life"),
        )
    runs = FakeRuns()
    runs.start_run("run-x", model_run_id="mr-x", model_type=MODEL_TYPES[0], model_id=None)
    assert os.getpid() != dead.pid
    with serve_in_thread(create_app(settings, runner=runs, model_types=MODEL_TYPES)) as base:
        deadline = time.monotonic() + 10
        while "run-x" not in runs.advance_calls:
            assert time.monotonic() < deadline, "the created run was not resumed"
            time.sleep(0.05)
        body = json.dumps({"modelRunId": "mr-x", "modelType": MODEL_TYPES[0]}).encode()
        again = httpx.post(
            base + "/model_run",
            content=body,
            headers={"X-Hub-Signature": sign(SECRET.encode(), body)},
        )
    assert again.status_code == 200 and again.json()["run_id"] == "run-x"
