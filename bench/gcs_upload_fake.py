"""Two tiny servers for bench/staging.py, each adding a fixed latency per request:

- an image origin: ``GET /img/N.jpg`` returns one of a few ~150 KB JPEGs;
- a fake of the GCS JSON API routes google-cloud-storage uses to stage images and write
  shards: multipart upload (``POST /upload/storage/v1/b/B/o?uploadType=multipart``), object
  listing (``GET /storage/v1/b/B/o``), an object's metadata (``GET /storage/v1/b/B/o/NAME``)
  and media (``GET /download/storage/v1/b/B/o/NAME?alt=media``, ``Range`` honoured), and
  ``objects.rewrite`` (``POST .../o/NAME/rewriteTo/b/B/o/NAME``: copied inside the fake).
  Bodies are read and dropped (only names and sizes kept), but for small ones (<= 64 KiB: rows
  files, manifests). Objects ``theirs/N.jpg`` exist from the start (the origin's JPEGs): a
  user's own images in Cloud Storage. ``GET /counters`` tells what went through the fake:
  uploads and their bytes, rewrites and the bytes they copied, media reads of ``theirs/``
  objects and the bytes sent.

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

    def _ranged(self, body: bytes) -> bytes:
        """``body`` cut to the request's ``Range: bytes=A-B`` when it has one."""
        wanted = self.headers.get("range", "").removeprefix("bytes=")
        if not wanted:
            return body
        start, _, end = wanted.partition("-")
        return body[int(start) : int(end) + 1 if end else None]

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _resource(
    bucket: str, name: str, size: int, content_type: str, metadata: dict[str, str]
) -> dict[str, Any]:
    return {
        "kind": "storage#object",
        "bucket": bucket,
        "name": name,
        "size": str(size),
        "contentType": content_type,
        "metadata": metadata,
        "generation": str(time.time_ns()),
    }


def serve(latency: float) -> tuple[ThreadingHTTPServer, ThreadingHTTPServer]:
    """Start both servers on free ports (daemon threads)."""
    images = make_jpegs()
    objects: dict[str, dict[str, Any]] = {}
    bodies: dict[str, bytes] = {}
    counters: dict[str, int] = {}

    def count(**amounts: int) -> None:
        with lock:
            for key, amount in amounts.items():
                counters[key] = counters.get(key, 0) + amount

    def theirs(bucket: str, name: str) -> tuple[dict[str, Any], bytes] | None:
        """A user's own JPEG ``theirs/N.jpg`` (resource, bytes)."""
        stem = name.removeprefix("theirs/").removesuffix(".jpg")
        if not name.startswith("theirs/") or not stem.isdigit():
            return None
        body = images[int(stem) % len(images)]
        return _resource(bucket, name, len(body), "image/jpeg", {}), body

    lock = threading.Lock()

    class Origin(_Quiet):
        def do_GET(self) -> None:
            time.sleep(latency)
            number = int(self.path.rsplit("/", 1)[-1].split(".")[0])
            self._reply(200, images[number % len(images)], "image/jpeg")

    class Gcs(_Quiet):
        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            if "/rewriteTo/" in parts.path:
                self._rewrite(parts.path, unquote(parts.path.split("/b/")[1].split("/")[0]))
                return
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
            count(uploads=1, uploaded_bytes=len(media))
            with lock:
                objects[meta["name"]] = resource
                if len(media) <= _KEEP_BODY:
                    bodies[meta["name"]] = media
            self._reply(200, json.dumps(resource).encode(), "application/json")

        def _rewrite(self, path: str, bucket: str) -> None:
            source, _, target = path.partition("/rewriteTo/b/")
            name = unquote(source.split("/o/", 1)[1])
            target_name = unquote(target.split("/o/", 1)[1])
            length = int(self.headers.get("content-length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            time.sleep(latency)
            found = theirs(bucket, name)
            if found is None:
                self._reply(404, b'{"error": {"code": 404}}', "application/json")
                return
            size = found[0]["size"]
            resource = _resource(bucket, target_name, int(size),
                                 request.get("contentType", "image/jpeg"),
                                 request.get("metadata", {}))  # fmt: skip
            with lock:
                objects[target_name] = resource
            count(rewrites=1, rewritten_bytes=int(size))
            self._reply(200, json.dumps({"kind": "storage#rewriteResponse", "done": True,
                                         "totalBytesRewritten": size, "objectSize": size,
                                         "resource": resource}).encode(),
                        "application/json")  # fmt: skip

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            time.sleep(latency)
            if parts.path == "/counters":
                with lock:
                    self._reply(200, json.dumps(counters).encode(), "application/json")
                return
            if "/o/" in parts.path:
                name = unquote(parts.path.split("/o/", 1)[1])
                bucket = unquote(parts.path.split("/b/")[1].split("/")[0])
                with lock:
                    found = objects.get(name)
                    body = bodies.get(name)
                if (user := theirs(bucket, name)) is not None:
                    found, body = user
                    body = self._ranged(body)
                    if parts.path.startswith("/download/"):
                        count(media_bytes_sent=len(body), media_requests=1)
                    else:
                        count(metadata_requests=1)
                if found is None or (parts.path.startswith("/download/") and body is None):
                    self._reply(404, b'{"error": {"code": 404}}', "application/json")
                elif parts.path.startswith("/download/"):
                    status = 206 if self.headers.get("range") else 200
                    self._reply(status, body or b"", found["contentType"])
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
