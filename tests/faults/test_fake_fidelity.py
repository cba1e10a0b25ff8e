"""Part 7 of the fault campaign: our fakes answer as Google's published API schema says.

A whole Vertex training cycle (stage images, import, train, evaluate, batch predict) runs through
the real SDKs with a recording proxy in front of the fake Vertex server and one in front of the
GCS emulator; every JSON answer is checked against the response schema of the method it answers
in the discovery documents ``aiplatform.v1.json`` / ``storage.v1.json`` (shipped inside
``google-api-python-client``, written by Google, not by us).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import discovery
from tests.fakes.flaky import Exchange, FaultProxy
from tests.fakes.gcp import LocalGcp, local_gcp
from tests.fakes.simple_run_context import SimpleRunContext
from tests.fakes.trainer_calls import predict_to_end, predictions_of, train_to_end
from tests.fakes.vertex_samples import make_samples
from vmt.backends.vertex import VertexTrainer
from vmt.config import load_settings
from vmt.domain import Sample, Split
from vmt.formats.outbound_policy import OutboundRules


def test_the_discovery_documents_ship_inside_the_client_package() -> None:
    folder = discovery.documents_dir()
    assert folder.parts[-3:] == ("googleapiclient", "discovery_cache", "documents")
    assert (folder / "aiplatform.v1.json").is_file()
    assert (folder / "storage.v1.json").is_file()


def test_the_check_fails_on_unknown_misspelled_and_mistyped_fields() -> None:
    vertex = discovery.load("aiplatform.v1")
    good = {
        "name": "projects/p/locations/l/trainingPipelines/1",
        "state": "PIPELINE_STATE_RUNNING",
        "labels": {"vmt-run": "r1"},
        "createTime": "2026-01-01T00:00:00Z",
        "trainingTaskInputs": {"anything": ["goes", 1]},
        "modelToUpload": {"name": "m", "displayName": "d"},
    }
    pipeline = "GoogleCloudAiplatformV1TrainingPipeline"
    assert vertex.check(pipeline, good) == []
    assert vertex.check(pipeline, {**good, "sate": "x"})[0].startswith("$.sate: unknown field")
    assert "not one of" in vertex.check(pipeline, {**good, "state": "RUNNING"})[0]
    assert "expected an object" in vertex.check(pipeline, {**good, "labels": ["a"]})[0]
    assert "RFC 3339" in vertex.check(pipeline, {**good, "createTime": "yesterday"})[0]
    nested = vertex.check(pipeline, {**good, "modelToUpload": {"nmae": "m"}})
    assert nested[0].startswith("$.modelToUpload.nmae: unknown field")
    stats = "GoogleCloudAiplatformV1CompletionStats"
    assert "decimal int64" in vertex.check(stats, {"successfulCount": "many"})[0]
    assert "expected a string" in vertex.check(stats, {"successfulCount": 3})[0]
    operation = {
        "name": "op",
        "done": True,
        "response": {"@type": "type.googleapis.com/google.cloud.aiplatform.v1.Dataset", "nme": 1},
    }
    assert "nme: unknown field" in vertex.check("GoogleLongrunningOperation", operation)[0]


def test_methods_are_found_by_verb_and_path() -> None:
    vertex = discovery.load("aiplatform.v1")
    method = vertex.method_for("GET", "/v1/projects/p/locations/l/trainingPipelines/7")
    assert method is not None and method.id.endswith("trainingPipelines.get")
    method = vertex.method_for("POST", "/v1/projects/p/locations/l/datasets/3:import")
    assert method is not None and method.id.endswith("datasets.import")
    storage = discovery.load("storage.v1")
    method = storage.method_for("GET", "/storage/v1/b/bkt/o/a%2Fb.png")
    assert method is not None and method.id == "storage.objects.get"
    method = storage.method_for("POST", "/upload/storage/v1/b/bkt/o")
    assert method is not None and method.id == "storage.objects.insert"


@pytest.fixture
def proxied(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalGcp, FaultProxy, FaultProxy]]:
    with local_gcp() as world:
        vertex = FaultProxy(world.vertex.url).start()
        storage = FaultProxy(world.storage_url).start()
        try:
            for key, value in world.settings_env().items():
                monkeypatch.setenv(key, value)
            monkeypatch.setenv("VMT_VERTEX_API_ENDPOINT", vertex.url)
            monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage.url)
            yield world, vertex, storage
        finally:
            vertex.stop()
            storage.stop()


def request_path(ex: Exchange) -> str:
    """The path without the query; the aiplatform SDK's REST operations client asks for
    ``/ui/{name}`` where the API documents ``/v1/{name}`` (same method, same answer)."""
    path = ex.path.split("?", 1)[0]
    return "/v1/" + path[4:] if path.startswith("/ui/") else path


def conformance(doc: discovery.DiscoveryDocument, exchanges: list[Exchange]) -> list[str]:
    """Problems of every 2xx JSON answer, and of any request no method of ``doc`` matches."""
    problems = []
    for ex in exchanges:
        path = request_path(ex)
        method = doc.method_for(ex.method, path)
        if method is None:
            problems.append(f"{ex.method} {path}: no method of {doc.name} has this path")
            continue
        if not (200 <= ex.status < 300) or "json" not in ex.content_type or not ex.body:
            continue
        if method.response is None:
            problems.append(f"{ex.method} {path}: {method.id} returns no body, got JSON")
            continue
        problems += [f"{method.id}: {p}" for p in doc.check(method.response, ex.json())]
    return problems


def test_a_whole_vertex_cycle_answers_as_the_published_schemas_say(
    proxied: tuple[LocalGcp, FaultProxy, FaultProxy], tmp_path: Path
) -> None:
    _world, vertex, storage = proxied
    trainer = VertexTrainer(load_settings(), outbound=OutboundRules.export_file())
    ctx = SimpleRunContext("run-fidelity", tmp_path / "work")
    prepared = trainer.prepare(ctx, make_samples(tmp_path / "img"))
    staged = [s for s in prepared if isinstance(s, Sample)]
    model = train_to_end(trainer, ctx, staged).model
    rows = [s for s in staged if s.split in (Split.VALIDATION, Split.TEST)]
    predicted = predictions_of(predict_to_end(trainer, ctx, model, rows))
    assert len(predicted) == len(rows)

    vertex_methods = {
        m.id.rsplit(".", 2)[-2] + "." + m.id.rsplit(".", 1)[-1]
        for ex in vertex.exchanges
        if (m := discovery.load("aiplatform.v1").method_for(ex.method, request_path(ex)))
    }
    assert {
        "datasets.create",
        "datasets.import",
        "trainingPipelines.create",
        "trainingPipelines.get",
        "batchPredictionJobs.create",
        "batchPredictionJobs.get",
    } <= vertex_methods
    assert len(storage.exchanges) >= len(staged)
    assert conformance(discovery.load("aiplatform.v1"), vertex.exchanges) == []
    assert conformance(discovery.load("storage.v1"), storage.exchanges) == []
