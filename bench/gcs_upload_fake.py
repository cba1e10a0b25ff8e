"""Two tiny servers for bench/staging.py, each adding a fixed latency per request:

- an image origin: ``GET /img/N.jpg`` returns one of a few ~150 KB JPEGs;
- a fake of the GCS JSON API routes google-cloud-storage uses to stage images and write
  shards: multipart upload (``POST /upload/storage/v1/b/B/o?uploadType=multipart``), object
  listing (``GET /storage/v1/b/B/o``), an object's metadata (``GET /storage/v1/b/B/o/NAME``)
  and media (``GET /download/storage/v1/b/B/o/NAME?alt=media``). Bodies are read and dropped
  (only names and sizes kept), but for small ones (<= 64 KiB: rows files, manifests).

The pure-Python gcp-storage-emulator is single-threaded and too slow to measure against.
Run as ``python bench/gcs_upload_fake.py LATENCY_S``: prints ``ORIGIN_PORT GCS_PORT`` and
serves until stdin closes.
"""

from __future__ import annotations

import io
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from PIL import Image

VARIANTS = 16
_KEEP_BODY = 64 * 1024


def make_jpegs(count: int = VARIANTS, seed: int = 0) -> list[bytes]:
    """Noisy photos-like JPEGs of about 150 KB."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        base = Image.effect_noise((600, 480), rng.uniform(40, 60)).convert("RGB")
        tint = Image.new("RGB", base.size, (rng.randrange(256), rng.randrange(256), 90))
        buf = io.BytesIO()
        Image.blend(base, tint, 0.4).save(buf, format="JPEG", quality=88)
        out.append(buf.getvalue())
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients leaving: not news
            super().handle_error(request, client_address)


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(latency: float) -> tuple[ThreadingHTTPServer, ThreadingHTTPServer]:
    """Start both servers on free ports (daemon threads)."""
    images = make_jpegs()
    objects: dict[str, dict[str, Any]] = {}
    bodies: dict[str, bytes] = {}
    lock = threading.Lock()

    class Origin(_Quiet):
        def do_GET(self) -> None:
            time.sleep(latency)
            number = int(self.path.rsplit("/", 1)[-1].split(".")[0])
            self._reply(200, images[number % len(images)], "image/jpeg")

    class Gcs(_Quiet):
        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            time.sleep(latency)
            bucket = unquote(parts.path.split("/b/")[1].split("/")[0])
            # multipart/related: JSON metadata part, then the media part.
            boundary = self.headers["content-type"].split("boundary=")[1].strip('"').encode()
            sections = body.split(b"--" + boundary)
            meta = json.loads(sections[1].split(b"\r\n\r\n", 1)[1])
            media = sections[2].split(b"\r\n\r\n", 1)[1][:-2]
            resource = {
                "kind": "storage#object",
                "bucket": bucket,
                "name": meta["name"],
                "size": str(len(media)),
                "contentType": meta.get("contentType", "application/octet-stream"),
                "metadata": meta.get("metadata", {}),
                "generation": str(time.time_ns()),
            }
            with lock:
                objects[meta["name"]] = resource
                if len(media) <= _KEEP_BODY:
                    bodies[meta["name"]] = media
            self._reply(200, json.dumps(resource).encode(), "application/json")

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            time.sleep(latency)
            if "/o/" in parts.path:
                name = unquote(parts.path.split("/o/", 1)[1])
                with lock:
                    found = objects.get(name)
                    body = bodies.get(name)
                if found is None or (parts.path.startswith("/download/") and body is None):
                    self._reply(404, b'{"error": {"code": 404}}', "application/json")
                elif parts.path.startswith("/download/"):
                    self._reply(200, body or b"", found["contentType"])
                else:
                    self._reply(200, json.dumps(found).encode(), "application/json")
                return
            prefix = parse_qs(parts.query).get("prefix", [""])[0]
            with lock:
                items = [o for name, o in objects.items() if name.startswith(prefix)]
            self._reply(200, json.dumps({"items": items}).encode(), "application/json")

    servers = (_Server(("127.0.0.1", 0), Origin), _Server(("127.0.0.1", 0), Gcs))
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return servers


if __name__ == "__main__":
    origin, gcs = serve(float(sys.argv[1]) if len(sys.argv) > 1 else 0.05)
    print(origin.server_address[1], gcs.server_address[1], flush=True)
    sys.stdin.read()
