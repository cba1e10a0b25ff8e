"""Benchmark: `vmt serve-model` (Vertex's custom-container contract over HTTP) vs the same
detector predicting the same images in-process (`vmt.backends.local.predict.predict_samples`).

    .venv/bin/python bench/serve_model.py [--images 320] [--batch 16] [--input-size 128]

One run writes ``--images`` JPEGs (640x480) and an untrained detector's model folder, then:

- baseline: ``predict_samples`` on the local files, in this process (decode, letterbox, forward,
  decode boxes);
- serving: ``python -m vmt serve-model`` in a child process (``AIP_STORAGE_URI`` = the model
  folder), the images served by a local HTTP server (allowed by ``VMT_OUTBOUND_ALLOW``), POSTed
  ``--batch`` instances a request as Vertex's batch job does; the clock starts once the health
  route answers 200.

It prints images/s of both and the ratio serving / in-process (1.0: the HTTP contract costs
nothing), and checks both found the same number of boxes per image.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_images(folder: Path, count: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        pixels = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
        path = folder / f"{index:05d}.jpg"
        Image.fromarray(pixels).save(path, quality=85)
        paths.append(path)
    return paths


def write_model(folder: Path, input_size: int) -> None:
    import torch

    from vmt.backends.local.checkpoint import MODEL_FILE, model_payload, save_atomic
    from vmt.backends.local.model import Detector, DetectorConfig

    torch.manual_seed(0)
    model = Detector(DetectorConfig(num_classes=3, input_size=input_size))
    folder.mkdir(parents=True, exist_ok=True)
    save_atomic(model_payload(model, ["a", "b", "c"]), folder / MODEL_FILE)


def in_process(model_dir: Path, images: list[Path], batch: int) -> tuple[float, list[int]]:
    import torch

    from vmt.backends.local.checkpoint import load_model
    from vmt.backends.local.predict import predict_samples
    from vmt.domain import Sample, Split

    model, classes = load_model(model_dir / "model.pt", torch.device("cpu"))
    samples = [Sample(p.name, str(p), None, None, Split.TEST, (), i) for i, p in enumerate(images)]
    start = time.perf_counter()
    found = [
        len(p.detections)
        for p in predict_samples(
            model, classes, samples, batch_size=batch, score_threshold=0.05, max_detections=100
        )
    ]
    return time.perf_counter() - start, found


def serving(model_dir: Path, images: list[Path], batch: int) -> tuple[float, list[int]]:
    handler = functools.partial(QuietHandler, directory=str(images[0].parent))
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{files.server_address[1]}"
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "AIP_HTTP_PORT": str(port),
        "AIP_STORAGE_URI": str(model_dir),
        "VMT_VERTEX_CUSTOM_SERVE_HOST": "127.0.0.1",
        "VMT_OUTBOUND_ALLOW": "127.0.0.1",
        "VMT_OUTBOUND_ALLOW_HTTP": "true",
        "VMT_GCP_ANONYMOUS_CREDENTIALS": "true",
    }
    server = subprocess.Popen([sys.executable, "-m", "vmt", "serve-model"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url + "/health", server)
        start = time.perf_counter()
        found: list[int] = []
        for first in range(0, len(images), batch):
            instances = [{"image_uri": f"{base}/{p.name}"} for p in images[first : first + batch]]
            body = {"instances": instances, "parameters": {"confidence_threshold": 0.05}}
            request = urllib.request.Request(
                url + "/predict", json.dumps(body).encode(), {"content-type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=600) as response:
                answers = json.loads(response.read())["predictions"]
            found += [len(answer["boxes"]) for answer in answers]
        return time.perf_counter() - start, found
    finally:
        server.terminate()
        server.wait(timeout=30)
        files.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"serve-model exited {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("serve-model never became healthy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--input-size", type=int, default=128)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    with tempfile.TemporaryDirectory() as tmp:
        images = make_images(Path(tmp), args.images)
        model_dir = Path(tmp) / "model"
        write_model(model_dir, args.input_size)
        base_s, base_found = in_process(model_dir, images, args.batch)
        serve_s, serve_found = serving(model_dir, images, args.batch)
    assert base_found == serve_found, "the two paths found different numbers of boxes"
    n = args.images
    print(f"in-process predict_samples: {base_s:7.2f} s  {n / base_s:7.1f} images/s")
    print(f"vmt serve-model over HTTP:  {serve_s:7.2f} s  {n / serve_s:7.1f} images/s")
    print(f"ratio serving / in-process: {base_s / serve_s:.2f} (throughput)")


if __name__ == "__main__":
    main()
