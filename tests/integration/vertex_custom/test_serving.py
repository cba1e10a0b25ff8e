"""The serving container's HTTP contract (Vertex AI custom containers), over real HTTP on
127.0.0.1, with an untrained detector's model folder and images in the GCS emulator."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.builders.detector_model import CLASSES, write_model_folder
from tests.fakes.gcp import BUCKET, PROJECT, emulator_storage_client, free_port, storage_emulator
from vmt.backends.vertex_custom.serving import ModelState, ServingEnv, build_app
from vmt.config import Settings


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_folder(tmp_path_factory.mktemp("model"))


@pytest.fixture
def images(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """gs:// locations in the emulator: two images of different sizes, a text file."""
    with storage_emulator() as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        bucket = emulator_storage_client(url).bucket(BUCKET)
        found = {}
        for name, size, kind in (("wide.png", (96, 48), "PNG"), ("tall.jpg", (40, 120), "JPEG")):
            data = io.BytesIO()
            Image.new("RGB", size, (200, 30, 60)).save(data, kind)
            bucket.blob(f"img/{name}").upload_from_string(data.getvalue())
            found[name] = f"gs://{BUCKET}/img/{name}"
        bucket.blob("img/notes.png").upload_from_string(b"this is not an image at all")
        found["notes.png"] = f"gs://{BUCKET}/img/notes.png"
        yield found


def _settings() -> Settings:
    return Settings(gcp_project=PROJECT, gcp_anonymous_credentials=True)


@contextmanager
def serving(env: ServingEnv) -> Iterator[tuple[httpx.Client, ModelState]]:
    import uvicorn

    state = ModelState()
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(state, env),
            host="127.0.0.1",
            port=env.port,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{env.port}", timeout=60) as client:
            yield client, state
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _env(storage_uri: str, **routes: str) -> ServingEnv:
    return ServingEnv.from_env(
        {"AIP_HTTP_PORT": str(free_port()), "AIP_STORAGE_URI": storage_uri, **routes}
    )


def _assert_detections(answer: dict[str, Any], width: int, height: int, limit: int) -> None:
    assert (answer["width"], answer["height"]) == (width, height)
    boxes, labels, scores = answer["boxes"], answer["labels"], answer["scores"]
    assert 0 < len(boxes) == len(labels) == len(scores) <= limit
    assert set(labels) <= set(CLASSES)
    assert scores == sorted(scores, reverse=True)
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_health_waits_for_the_model_then_instances_are_predicted_one_failing_alone(
    model_dir: Path, images: dict[str, str], tmp_path: Path
) -> None:
    env = _env(str(model_dir), AIP_HEALTH_ROUTE="/v1/healthz", AIP_PREDICT_ROUTE="/v1/predict")
    with serving(env) as (client, state):
        assert client.get("/v1/healthz").status_code == 503
        assert client.post("/v1/predict", json={"instances": []}).status_code == 503
        state.load(_settings(), env, tmp_path)
        assert state.failure is None
        assert client.get("/v1/healthz").status_code == 200

        instances = [
            {"image_uri": images["wide.png"]},
            {"image_uri": images["notes.png"]},
            {"url": images["wide.png"]},
            {"image_uri": f"gs://{BUCKET}/img/missing.png"},
            {"image_uri": images["tall.jpg"]},
            {"image_uri": "file:///etc/passwd"},
        ]
        parameters = {"confidence_threshold": 0.0, "max_predictions": 7}
        response = client.post(
            "/v1/predict", json={"instances": instances, "parameters": parameters}
        )
        assert response.status_code == 200
        predictions = response.json()["predictions"]
        assert len(predictions) == len(instances)
        _assert_detections(predictions[0], 96, 48, 7)
        _assert_detections(predictions[4], 40, 120, 7)
        assert "image_not_supported" in predictions[1]["error"]
        assert "image_uri" in predictions[2]["error"]
        assert "image_missing" in predictions[3]["error"]
        assert "image_location_refused" in predictions[5]["error"]

        many = client.post(
            "/v1/predict", json={"instances": instances * 7, "parameters": parameters}
        ).json()["predictions"]
        assert len(many) == len(instances) * 7
        for got, first in zip(many, predictions * 7, strict=True):  # in order, across passes
            if "error" in first:
                assert got == first
            else:
                assert (got["width"], got["height"]) == (first["width"], first["height"])
                assert got["scores"] == pytest.approx(first["scores"], abs=1e-4)

        strict = client.post(
            "/v1/predict",
            json={"instances": instances[:1], "parameters": {"confidence_threshold": 1.0}},
        )
        assert strict.json()["predictions"][0]["boxes"] == []


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "not JSON"),
        (b'{"instances": "gs://b/x.png"}', "instances"),
        (b'[{"image_uri": "gs://b/x.png"}]', "instances"),
        (b'{"instances": [], "parameters": {"confidence_threshold": 2}}', "confidence_threshold"),
        (b'{"instances": [], "parameters": {"max_predictions": "10"}}', "max_predictions"),
    ],
)
def test_a_request_that_is_not_a_predict_request_is_refused_with_its_reason(
    model_dir: Path, tmp_path: Path, body: bytes, why: str
) -> None:
    env = _env(str(model_dir))
    with serving(env) as (client, state):
        state.load(Settings(), env, tmp_path)
        response = client.post("/predict", content=body)
        assert response.status_code == 400
        assert why in response.json()["error"]


def test_a_model_folder_without_a_model_is_a_failed_load_never_healthy(tmp_path: Path) -> None:
    env = _env(str(tmp_path / "empty"))
    with serving(env) as (client, state):
        state.load(Settings(), env, tmp_path)
        assert state.failure is not None and "model.pt" in state.failure
        health = client.get("/health")
        assert (health.status_code, health.json()) == (503, {"status": "failed"})
