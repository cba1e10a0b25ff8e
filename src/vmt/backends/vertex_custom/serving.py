"""``vmt serve-model``: the trained detector behind Vertex AI's custom-container contract
(https://cloud.google.com/vertex-ai/docs/predictions/custom-container-requirements).

What Vertex sets, and what is done with it:

- ``AIP_HTTP_PORT`` (default 8080): the port the HTTP server listens on;
- ``AIP_HEALTH_ROUTE`` (default ``/health``): GET answers 200 once the model is loaded, 503
  before (and after a load that failed: the process then exits non-zero);
- ``AIP_PREDICT_ROUTE`` (default ``/predict``): POST of ``{"instances": [...], "parameters":
  {...}}`` answered with ``{"predictions": [...]}``, one per instance in order (the shapes are in
  `vmt.formats.detector_predictions`); an instance whose image cannot be read gets
  ``{"error": ...}`` and the others are still predicted; a body that is not such a request gets
  400 ``{"error": ...}``;
- ``AIP_STORAGE_URI``: the model folder (``gs://`` or local) holding ``model.pt`` (the local
  detector's ``checkpoint.model_payload``) and ``model.json``.

Images are read through the project's one image seam (``ImageFetcher``: retries, outbound
policy of the service context, size limit, redaction), ``gs://`` through google-cloud-storage.
"""

from __future__ import annotations

import io
import logging
import tempfile
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
from google.api_core.exceptions import GoogleAPICallError
from PIL import Image, UnidentifiedImageError

from vmt.backends.gcs import build_storage_client, gcs_call
from vmt.backends.image_source import FetchPolicy, ImageFetcher, ImageRejected
from vmt.backends.outbound import rules_for
from vmt.config import Settings, configured_secrets
from vmt.errors import AuthError, BackendError, ConfigError, VmtError
from vmt.formats.detector_predictions import (
    PredictParameters,
    failure_json,
    instance_uri,
    prediction_json,
)
from vmt.formats.image_uri import GcsPath, local_path, redact, redact_text
from vmt.logs import configure_logging
from vmt.reasons import Reason
from vmt.retry import Backoff

log = logging.getLogger("vmt")

MODEL_FILE = "model.pt"
MODEL_INFO_FILE = "model.json"
MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest predict request read (Vertex's own limit is 1.5 MB)."""
MAX_INSTANCES = 1000
_READ_THREADS = 8
_BATCH = 16
"""Images a forward pass."""


class ServingEnv(NamedTuple):
    """The ``AIP_*`` variables of Vertex's custom-container contract: ``AIP_HTTP_PORT`` (where
    the server listens), ``AIP_HEALTH_ROUTE``, ``AIP_PREDICT_ROUTE``, ``AIP_STORAGE_URI`` (the
    model folder: Vertex's copy of the model's ``artifactUri``)."""

    port: int
    health_route: str
    predict_route: str
    storage_uri: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServingEnv:
        """Raises ``ConfigError`` naming the variable that is missing or wrong."""
        storage_uri = env.get("AIP_STORAGE_URI", "").strip()
        if not storage_uri:
            raise ConfigError("AIP_STORAGE_URI (the model folder, gs:// or local) is not set")
        port_text = env.get("AIP_HTTP_PORT", "8080")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"AIP_HTTP_PORT must be a port number, not {port_text!r}")
        routes = (env.get("AIP_HEALTH_ROUTE", "/health"), env.get("AIP_PREDICT_ROUTE", "/predict"))
        for route in routes:
            if not route.startswith("/"):
                raise ConfigError(f"AIP_HEALTH_ROUTE/AIP_PREDICT_ROUTE must start with /: {route}")
        return cls(int(port_text), routes[0], routes[1], storage_uri)


def fetch_model_file(storage_uri: str, dest: Path, storage: Any | None) -> Path:
    """The model folder's ``model.pt`` as a local file: copied into ``dest`` from ``gs://``,
    used in place when local. Raises ``BackendError`` when it cannot be had."""
    if storage_uri.startswith("gs://"):
        if storage is None:
            raise BackendError(f"no Cloud Storage client to read {redact(storage_uri)}")
        where = GcsPath.parse(storage_uri.rstrip("/") + "/" + MODEL_FILE)
        target = dest / MODEL_FILE
        blob = storage.bucket(where.bucket).blob(where.name)
        gcs_call(
            lambda: blob.download_to_filename(str(target)),
            backoff=Backoff(base=1.0, cap=10.0, deadline=120.0),
            describe=f"download {where.uri}",
        )
        return target
    folder = local_path(storage_uri)
    if folder is None or not (folder / MODEL_FILE).is_file():
        raise BackendError(f"no {MODEL_FILE} in the model folder {redact(storage_uri)}")
    return folder / MODEL_FILE


class ServedModel:
    """A loaded detector answering predict requests; thread-safe (one forward pass at a
    time)."""

    def __init__(self, model_path: Path, fetcher: ImageFetcher) -> None:
        import torch

        from vmt.backends.local.checkpoint import load_model

        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.classes = load_model(model_path, device)
        self._fetcher = fetcher
        self._lock = threading.Lock()

    def predict(self, instances: Sequence[Any], parameters: PredictParameters) -> list[Any]:
        """One answer per instance, in order (``prediction_json`` or ``failure_json``). At most
        ``_BATCH`` decoded images are held at a time, whatever the request's size."""
        answers: list[Any] = []
        with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
            for start in range(0, len(instances), _BATCH):
                read = list(pool.map(self._read, instances[start : start + _BATCH]))
                images = [r for r in read if isinstance(r, _Image)]
                found = iter(self._detect(images, parameters) if images else [])
                answers += [next(found) if isinstance(r, _Image) else r for r in read]
        return answers

    def _read(self, instance: Any) -> _Image | dict[str, str]:
        try:
            uri = instance_uri(instance)
        except ValueError as exc:
            return failure_json(f"{Reason.MALFORMED_ROW}: {exc}")
        try:
            data = self._fetcher.retrying(lambda: self._download(uri), uri=uri)
            return _Image(uri, _decode(data, uri))
        except ImageRejected as exc:
            log.warning("instance not predicted: %s", exc.detail)
            return failure_json(f"{exc.reason}: {exc.detail}")
        except GoogleAPICallError as exc:
            detail = f"{Reason.IMAGE_FETCH_FAILED}: {redact(uri)}: {redact_text(exc.message, uri)}"
            log.warning("instance not predicted: %s", detail)
            return failure_json(detail)

    def _download(self, uri: str) -> bytes:
        limit = self._fetcher.policy.max_bytes
        source = self._fetcher.open(uri)
        try:
            if source.size is not None and source.size > limit:
                raise ImageRejected(
                    Reason.IMAGE_FETCH_FAILED, f"{redact(uri)} is larger than {limit} bytes"
                )
            data = source.read_at_least(limit + 1)
        finally:
            source.close()
        if len(data) > limit:
            raise ImageRejected(
                Reason.IMAGE_FETCH_FAILED, f"{redact(uri)} is larger than {limit} bytes"
            )
        return data

    def _detect(self, images: list[_Image], parameters: PredictParameters) -> list[Any]:
        import torch

        from vmt.backends.local.letterbox import Letterbox
        from vmt.backends.local.predict import detect, to_prediction

        side = self.model.config.input_size
        boxes = [Letterbox.fit(image.pixels.width, image.pixels.height, side) for image in images]
        arrays = np.stack(
            [box.apply(image.pixels) for box, image in zip(boxes, images, strict=True)]
        )
        with self._lock:
            found = detect(
                self.model,
                torch.from_numpy(arrays).permute(0, 3, 1, 2),
                score_threshold=parameters.confidence_threshold,
                max_detections=parameters.max_predictions,
            )
        return [
            prediction_json(to_prediction(image.uri, raw, box, self.classes), box.width, box.height)
            for image, raw, box in zip(images, found, boxes, strict=True)
        ]


@dataclass(frozen=True, slots=True)
class _Image:
    uri: str
    pixels: Image.Image


def _decode(data: bytes, uri: str) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except UnidentifiedImageError as exc:
        raise ImageRejected(
            Reason.IMAGE_NOT_SUPPORTED, f"{redact(uri)} is not an image this server decodes"
        ) from exc
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageRejected(
            Reason.IMAGE_NOT_SUPPORTED, f"{redact(uri)} cannot be decoded: {exc}"[:300]
        ) from exc


class ModelState:
    """The served model once loaded, or why it could not be."""

    def __init__(self) -> None:
        self.served: ServedModel | None = None
        self.failure: str | None = None

    def load(self, settings: Settings, env: ServingEnv, workdir: Path) -> None:
        try:
            storage = _storage_client(settings, required=env.storage_uri.startswith("gs://"))
            fetcher = ImageFetcher(FetchPolicy(), rules=rules_for(settings), storage=storage)
            path = fetch_model_file(env.storage_uri, workdir, storage)
            self.served = ServedModel(path, fetcher)
        except VmtError as exc:
            self.failure = exc.message
            log.error("the model could not be loaded: %s", exc.message)
            return
        log.info(
            "model loaded from %s: %d classes", redact(env.storage_uri), len(self.served.classes)
        )


def _storage_client(settings: Settings, *, required: bool) -> Any | None:
    """A Cloud Storage client; without credentials and unless ``required``, None (``gs://``
    images are then refused, each with its reason)."""
    try:
        return build_storage_client(settings)
    except AuthError as exc:
        if required:
            raise
        log.warning("no Cloud Storage access, gs:// images will be refused: %s", exc.message)
        return None


def build_app(state: ModelState, env: ServingEnv) -> Any:
    """The Starlette app of the contract's two routes."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def answer(status: int, payload: Any) -> Response:
        return Response(orjson.dumps(payload), status, media_type="application/json")

    async def health(request: Request) -> Response:
        if state.served is not None:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "failed" if state.failure else "loading"}, 503)

    async def predict(request: Request) -> Response:
        served = state.served
        if served is None:
            return answer(503, {"error": "the model is not loaded yet"})
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            return answer(413, {"error": f"request larger than {MAX_BODY_BYTES} bytes"})
        body = await request.body()
        try:
            instances, parameters = _parse_request(body)
        except ValueError as exc:
            return answer(400, {"error": str(exc)})
        predictions = await run_in_threadpool(served.predict, instances, parameters)
        return answer(200, {"predictions": predictions})

    return Starlette(
        routes=[
            Route(env.health_route, health, methods=["GET"]),
            Route(env.predict_route, predict, methods=["POST"]),
        ]
    )


def _parse_request(body: bytes) -> tuple[list[Any], PredictParameters]:
    """Raises ValueError saying what is wrong with the request as a whole."""
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"request larger than {MAX_BODY_BYTES} bytes")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the request is not JSON: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
        raise ValueError('the request must be {"instances": [...], "parameters": {...}}')
    instances: list[Any] = payload["instances"]
    if len(instances) > MAX_INSTANCES:
        raise ValueError(f"more than {MAX_INSTANCES} instances in one request")
    return instances, PredictParameters.from_json(payload.get("parameters"))


def serve_model(settings: Settings, env: ServingEnv, *, host: str) -> None:
    """Serve until stopped; the model loads in the background (health 503 until then).
    Raises ``BackendError`` when it could not be loaded (after the server stopped)."""
    import uvicorn

    configure_logging(json=settings.log_json, secrets=configured_secrets(settings))
    state = ModelState()
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(state, env), host=host, port=env.port, log_level="warning", lifespan="off"
        )
    )
    with tempfile.TemporaryDirectory(prefix="vmt-model-") as workdir:

        def load() -> None:
            state.load(settings, env, Path(workdir))
            if state.failure is not None:
                server.should_exit = True

        threading.Thread(target=load, name="vmt-model-load", daemon=True).start()
        log.warning(
            "serving on %s:%d (%s, %s)", host, env.port, env.health_route, env.predict_route
        )
        server.run()
    if state.failure is not None:
        raise BackendError(f"the model could not be loaded: {state.failure}")
