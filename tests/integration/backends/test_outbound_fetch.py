"""The outbound policy enforced by the one image fetcher, on loopback listeners this test owns:
a refused location is rejected with ``image_location_refused`` and no connection reaches the
listener (it counts every TCP connection it accepts), for literal addresses in every spelling,
names that resolve to private addresses, and redirect hops."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from vmt.backends.image_source import FetchPolicy, ImageFetcher, ImageRejected
from vmt.formats.outbound_policy import OutboundRules
from vmt.reasons import Reason

FAST = FetchPolicy(connect_timeout=1.0, read_timeout=2.0, attempts=1)


class Listener:
    """A TCP listener on ``host`` that counts the connections it accepts, answering each with
    a PNG (or a redirect to ``redirect_to``)."""

    def __init__(self, host: str = "127.0.0.1", redirect_to: str | None = None) -> None:
        self.connections = 0
        buffer = io.BytesIO()
        Image.new("RGB", (8, 6), (1, 2, 3)).save(buffer, format="PNG")
        png = buffer.getvalue()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                owner.connections += 1
                super().setup()

            def do_GET(self) -> None:
                if owner.redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", owner.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(png)))
                self.end_headers()
                self.wfile.write(png)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.redirect_to = redirect_to
        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.close()


def _fetch(uri: str, rules: OutboundRules, dest: Path) -> Any:
    fetcher = ImageFetcher(FAST, rules=rules)
    try:
        return fetcher.download(uri, dest, "key")
    finally:
        fetcher.close()


def _refused(uri: str, rules: OutboundRules, dest: Path) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        _fetch(uri, rules, dest)
    assert caught.value.reason is Reason.IMAGE_LOCATION_REFUSED
    return caught.value


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1",
        "0x7f.1",
        "2130706433",
        "017700000001",
        "0x7f000001",
        "localhost",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
    ],
)
def test_loopback_in_any_spelling_is_refused_unconnected(
    listener: Listener, tmp_path: Path, host: str
) -> None:
    rules = OutboundRules.service(http=True)
    _refused(f"http://{host}:{listener.port}/a.png", rules, tmp_path)
    assert listener.connections == 0


def test_a_name_resolving_to_a_private_address_is_refused_at_connect_time(
    listener: Listener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS answers the listener's address for a public-looking name (as a rebinding or
    internal name would): the address is checked after the look-up, before connecting."""
    real = socket.getaddrinfo

    def dns(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("images.example", "both.example"):
            answers = real("127.0.0.1", port, *args, **kwargs)
            if host == "both.example":
                answers = real("8.8.8.8", port, *args, **kwargs) + answers
            return answers
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", dns)
    rules = OutboundRules.service(http=True)
    _refused(f"http://images.example:{listener.port}/a.png", rules, tmp_path)
    _refused(f"http://both.example:{listener.port}/a.png", rules, tmp_path)
    assert listener.connections == 0
    allowed = OutboundRules.service(["images.example"], http=True)
    path, info = _fetch(f"http://images.example:{listener.port}/a.png", allowed, tmp_path)
    assert (info.width, info.height) == (8, 6) and path.exists()
    assert listener.connections == 1


def test_a_redirect_to_a_private_address_is_refused_unconnected(tmp_path: Path) -> None:
    """The origin (allowlisted) redirects to another loopback address that is not: the hop is
    refused at connect time; the target listener sees nothing."""
    target = Listener("127.0.0.2")
    origin = Listener(redirect_to=f"http://127.0.0.2:{target.port}/a.png")
    try:
        rules = OutboundRules.service(["127.0.0.1"], http=True)
        refused = _refused(f"http://127.0.0.1:{origin.port}/a.png", rules, tmp_path)
        assert "127.0.0.2" not in refused.detail
        assert (origin.connections, target.connections) == (1, 0)
        for hop in (
            "file:///etc/passwd",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://metadata.google.internal/",
        ):
            origin.redirect_to = hop
            _refused(f"http://127.0.0.1:{origin.port}/a.png", rules, tmp_path)
        both = OutboundRules.service(["127.0.0.1", "127.0.0.2"], http=True)
        origin.redirect_to = f"http://127.0.0.2:{target.port}/a.png"
        _path, info = _fetch(f"http://127.0.0.1:{origin.port}/b.png", both, tmp_path)
        assert info.width == 8 and target.connections == 1
    finally:
        origin.close()
        target.close()


def test_local_files_are_read_only_in_the_export_file_context(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    Image.new("RGB", (4, 3)).save(image)
    for uri in (str(image), f"file://{image}", "/etc/passwd", "file:///etc/passwd"):
        refused = _refused(uri, OutboundRules.service(["127.0.0.1"], http=True), tmp_path / "c")
        assert "passwd" not in refused.detail or refused.detail.startswith(uri)
    path, info = _fetch(f"file://{image}", OutboundRules.export_file(), tmp_path / "c")
    assert path == image and info.width == 4


def test_http_is_refused_unless_configured(listener: Listener, tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{listener.port}/a.png"
    _refused(uri, OutboundRules.service(["127.0.0.1"]), tmp_path)
    assert listener.connections == 0
    _fetch(uri, OutboundRules.service(["127.0.0.1"], http=True), tmp_path)
    assert listener.connections == 1
