"""The webhook against a real uvicorn server: signatures, limits, idempotency under load."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time

import httpx
import pytest

from tests.integration.service.conftest import SECRET, TOKEN, Service
from vmt.service.signature import sign

BODY = json.dumps(
    {"modelId": "model-1", "modelRunId": "mr-0001", "modelType": "local_object_detection"}
).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Hub-Signature": sign(secret.encode(), body), "Content-Type": "application/json"}


def test_signed_delivery_creates_one_run_and_the_worker_completes_it(service: Service) -> None:
    response = httpx.post(f"{service.url}/model_run", content=BODY, headers=signed(BODY))
    assert response.status_code == 202
    answer = response.json()
    assert answer["model_run_id"] == "mr-0001"
    assert answer["status"] in ("pending", "running", "complete")  # the worker may be quick
    assert service.runs.start_calls == ["mr-0001"]
    deadline = time.monotonic() + 5
    while service.runs.get_run(answer["run_id"])["state"] != "complete":  # type: ignore[index]
        assert time.monotonic() < deadline, "worker never advanced the run"
        time.sleep(0.01)

    again = httpx.post(f"{service.url}/model_run", content=BODY, headers=signed(BODY))
    assert again.status_code == 200
    assert again.json() == {
        "run_id": answer["run_id"],
        "model_run_id": "mr-0001",
        "status": "complete",
    }
    assert service.runs.start_calls == ["mr-0001"]


def test_models_lists_the_offered_types_when_signed(service: Service) -> None:
    response = httpx.get(f"{service.url}/models", headers=signed(b""))
    assert response.status_code == 200
    assert response.json() == {"local_object_detection": {}, "vertex_automl_object_detection": {}}
    assert httpx.get(f"{service.url}/models").status_code == 401


def _hex_sha256(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


BAD_SIGNATURES = [
    pytest.param({}, id="unsigned"),
    pytest.param({"X-Hub-Signature": sign(b"another-secret", BODY)}, id="wrong-secret"),
    pytest.param({"X-Hub-Signature": sign(SECRET.encode(), BODY + b" ")}, id="tampered-body"),
    pytest.param({"X-Hub-Signature": _hex_sha256(BODY)}, id="sha256-prefix"),
    pytest.param(
        {"X-Hub-Signature": "sha256=" + sign(SECRET.encode(), BODY)[5:]}, id="sha1-digest-sha256"
    ),
    pytest.param({"X-Hub-Signature": ""}, id="empty"),
    pytest.param({"X-Hub-Signature": "sha1="}, id="empty-digest"),
    pytest.param({"X-Hub-Signature": sign(SECRET.encode(), BODY)[5:]}, id="no-prefix"),
    pytest.param({"X-Hub-Signature": sign(SECRET.encode(), BODY)[:-1]}, id="truncated"),
]


@pytest.mark.parametrize("headers", BAD_SIGNATURES)
def test_bad_signatures_are_401_and_start_nothing(
    service: Service, headers: dict[str, str]
) -> None:
    response = httpx.post(f"{service.url}/model_run", content=BODY, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "bad_signature"
    models = httpx.get(f"{service.url}/models", headers=headers)
    assert models.status_code == 401
    assert service.runs.start_calls == []
    assert service.runs.runs == {}


def test_uppercase_hex_digest_is_accepted(service: Service) -> None:
    header = "sha1=" + sign(SECRET.encode(), BODY)[5:].upper()
    response = httpx.post(
        f"{service.url}/model_run", content=BODY, headers={"X-Hub-Signature": header}
    )
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "invalid_json"),  # malformed JSON
        (b"\xff\xfe\x00", 400, "invalid_json"),  # not UTF-8
        (b"", 400, "invalid_json"),  # empty body
        (b"[1, 2]", 400, "invalid_json"),  # JSON but not an object
        (b'{"modelType": "local_object_detection"}', 400, "missing_model_run_id"),
        (b'{"modelRunId": "", "modelType": "local_object_detection"}', 400, "missing_model_run_id"),
        (b'{"modelRunId": 42, "modelType": "local_object_detection"}', 400, "missing_model_run_id"),
        (
            b'{"modelRunId": "a b", "modelType": "local_object_detection"}',
            400,
            "missing_model_run_id",
        ),
        (b'{"modelRunId": "mr-1", "modelType": "yolo"}', 422, "unknown_model_type"),
        (b'{"modelRunId": "mr-1"}', 422, "unknown_model_type"),
        (
            b'{"modelRunId": "mr-1", "modelType": ["local_object_detection"]}',
            422,
            "unknown_model_type",
        ),
    ],
)
def test_malformed_bodies_are_4xx_json(
    service: Service, body: bytes, status: int, error: str
) -> None:
    response = httpx.post(f"{service.url}/model_run", content=body, headers=signed(body))
    assert response.status_code == status
    assert response.json()["error"] == error
    assert service.runs.start_calls == []


def test_oversized_bodies_are_413_declared_or_streamed(service: Service) -> None:
    big = (
        b'{"modelRunId": "mr-big", "modelType": "local_object_detection", "pad": "'
        + (b"x" * 70_000)
        + b'"}'
    )
    declared = httpx.post(f"{service.url}/model_run", content=big, headers=signed(big))
    assert declared.status_code == 413
    assert declared.json()["error"] == "too_large"

    def chunks() -> object:
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    streamed = httpx.post(f"{service.url}/model_run", content=chunks(), headers=signed(big))
    assert streamed.status_code == 413
    assert service.runs.start_calls == []

    just_fits = json.dumps(
        {
            "modelRunId": "mr-fits",
            "modelType": "local_object_detection",
            "pad": "x" * (64 * 1024 - 80),
        }
    ).encode()
    assert len(just_fits) <= 64 * 1024
    assert (
        httpx.post(
            f"{service.url}/model_run", content=just_fits, headers=signed(just_fits)
        ).status_code
        == 202
    )


def test_200_concurrent_deliveries_of_one_model_run_create_exactly_one_run(
    service: Service,
) -> None:
    service.runs.start_delay = 0.05  # the creator is slow: everyone else must wait, not create
    body = json.dumps({"modelRunId": "mr-storm", "modelType": "local_object_detection"}).encode()
    results: list[tuple[int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(200)
    limits = httpx.Limits(max_connections=200)
    with httpx.Client(timeout=30, limits=limits) as client:

        def deliver() -> None:
            barrier.wait()
            response = client.post(f"{service.url}/model_run", content=body, headers=signed(body))
            with lock:
                results.append((response.status_code, response.json()["run_id"]))

        threads = [threading.Thread(target=deliver) for _ in range(200)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert len(results) == 200
    statuses = sorted(status for status, _ in results)
    assert statuses.count(202) == 1
    assert statuses.count(200) == 199
    assert len({run_id for _, run_id in results}) == 1
    assert service.runs.start_calls == ["mr-storm"]
    assert len(service.runs.runs) == 1


def test_runs_api_requires_the_bearer_token(service: Service) -> None:
    created = httpx.post(f"{service.url}/model_run", content=BODY, headers=signed(BODY)).json()
    run_url = f"{service.url}/runs/{created['run_id']}"
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ):
        assert httpx.get(f"{service.url}/runs", headers=headers).status_code == 401
        assert httpx.get(run_url, headers=headers).status_code == 401
        cancel = httpx.post(f"{run_url}/cancel", headers=headers)
        assert cancel.status_code == 401
        assert cancel.headers["www-authenticate"] == "Bearer"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    listed = httpx.get(f"{service.url}/runs", headers=auth).json()["runs"]
    assert [run["run_id"] for run in listed] == [created["run_id"]]
    assert httpx.get(run_url, headers=auth).json()["model_run_id"] == "mr-0001"
    assert httpx.get(f"{service.url}/runs/nope", headers=auth).status_code == 404


def test_cancel_answers_json_for_each_outcome(service: Service) -> None:
    service.runs.steps = 10**6  # never completes on its own
    created = httpx.post(f"{service.url}/model_run", content=BODY, headers=signed(BODY)).json()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    run_url = f"{service.url}/runs/{created['run_id']}"
    first = httpx.post(f"{run_url}/cancel", headers=auth)
    assert first.status_code == 200
    assert first.json()["state"] == "cancelled"
    second = httpx.post(f"{run_url}/cancel", headers=auth)
    assert second.status_code == 409
    assert second.json()["error"] == "conflict"
    missing = httpx.post(f"{service.url}/runs/nope/cancel", headers=auth)
    assert missing.status_code == 404


def test_health_probes_and_openapi_and_json_404(service: Service) -> None:
    assert httpx.get(f"{service.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{service.url}/readyz").json() == {"status": "ready"}
    spec = httpx.get(f"{service.url}/openapi.json").json()
    assert {
        "/models",
        "/model_run",
        "/runs",
        "/runs/{run_id}",
        "/runs/{run_id}/cancel",
        "/healthz",
        "/readyz",
    } <= set(spec["paths"])
    missing = httpx.get(f"{service.url}/no-such-page")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong_method = httpx.delete(f"{service.url}/model_run")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/json"
