"""A fake Vertex AI REST API on 127.0.0.1, driven by the real ``google-cloud-aiplatform`` SDK.

Point the SDK at it with ``transport="rest"``, ``api_endpoint=fake.url`` and anonymous
credentials. It covers what the Vertex trainer uses:

- datasets: create (long-running operation answered done), list by label, get, import, operations
- training pipelines: create, get (state advances one step per poll), cancel, list by label
- models: get, list evaluations
- batch prediction jobs: create, get (advances per poll), cancel, list by label; on success it
  writes ``predictions_00001.jsonl`` (noisy copies of the ground truth read from the dataset's
  import file, boxes in Vertex's xMin, xMax, yMin, yMax order; for images outside the dataset,
  of ``unseen_truth``) and ``errors_00001.jsonl`` into GCS (the gcp-storage-emulator) through
  the ``storage_client`` it is given.

Every request is recorded in ``requests`` (method, path, query, JSON body).
"""

from __future__ import annotations

import itertools
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.vertex_custom_models import FakeCustomModels
from tests.fakes.vertex_pipeline_jobs import FakePipelineJobs, Refused

_TYPE = "type.googleapis.com/google.cloud.aiplatform.v1."
_PIPELINE_STEPS = ("PIPELINE_STATE_QUEUED", "PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING")
_JOB_STEPS = ("JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING")
_LABEL_FILTER = re.compile(r'labels\.([\w.-]+)\s*=\s*"?([^"\s]*)"?')
EVALUATION_SCHEMA = (
    "gs://google-cloud-aiplatform/schema/modelevaluation/image_object_detection_metrics_1.0.0.yaml"
)


def _now() -> str:
    """An RFC 3339 timestamp as Vertex writes ``createTime``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class FakeVertex:
    """State and behaviour; ``serve()`` starts the HTTP front end."""

    storage_client: Any = None
    training_polls: int = 3
    """GETs of a training pipeline before it ends (QUEUED, PENDING, RUNNING..., then the end)."""
    training_seconds: float = 0.0
    """Seconds a training pipeline runs at least (wall clock from its creation), whatever the
    number of GETs: a long training, for tests of what else goes on meanwhile."""
    batch_polls: int = 2
    fail_training: str | None = None
    """When set, training pipelines end FAILED with this message."""
    fail_batch_jobs: int = 0
    """The first this many batch prediction jobs end FAILED ("quota exceeded")."""
    error_uris: set[str] = field(default_factory=set)
    """Batch instances reported in the errors file instead of predicted."""
    unseen_truth: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """What the model "sees" in images outside its dataset (a pool's), by the image's file
    name (``row7.png``): boxes in the import file's form (displayName, xMin, yMin, xMax, yMax
    normalised). Images in neither are predicted empty."""
    seed: int = 0
    requests: list[Recorded] = field(default_factory=list)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    imports: dict[str, list[str]] = field(default_factory=dict)
    """dataset name -> import file URIs."""
    pipeline_jobs: FakePipelineJobs = field(default_factory=FakePipelineJobs)
    """Vertex AI Pipelines jobs (tests/fakes/vertex_pipeline_jobs.py)."""
    custom_models: FakeCustomModels = field(default_factory=FakeCustomModels)
    """Model upload and batch jobs on our container (tests/fakes/vertex_custom_models.py)."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1000)
        self._polls: dict[str, int] = {}
        self.created: dict[str, float] = {}
        """Training pipeline name -> when it was created (``time.monotonic()``)."""
        self.finished: dict[str, float] = {}
        """Training pipeline name -> when it succeeded (``time.monotonic()``)."""
        self._server: ThreadingHTTPServer | None = None
        self._rng = random.Random(self.seed)

    # -- lifecycle --

    def serve(self) -> FakeVertex:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload = fake.dispatch(self.command, self.path, raw)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "call serve() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self.custom_models.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- what tests ask --

    def creates(self, collection: str) -> int:
        """POSTs that create a resource in ``collection`` (e.g. "trainingPipelines")."""
        return sum(
            1 for r in self.requests if r.method == "POST" and r.path.endswith("/" + collection)
        )

    def bodies(self, collection: str) -> list[Any]:
        return [
            r.body
            for r in self.requests
            if r.method == "POST" and r.path.endswith("/" + collection)
        ]

    # -- routing --

    def dispatch(self, method: str, raw_path: str, raw_body: bytes) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        body = json.loads(raw_body) if raw_body else None
        with self._lock:
            self.requests.append(Recorded(method, path, query, body))
            path = re.sub(r"^/(v1|ui)/", "", path)
            try:
                return 200, self._route(method, path, query, body)
            except KeyError as exc:
                return 404, _error(404, "NOT_FOUND", f"{exc.args[0]} not found")
            except (_Refused, Refused) as exc:
                return exc.status, _error(exc.status, exc.code, exc.message)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Any:
        parent = r"(projects/[^/]+/locations/[^/]+)"
        routes: list[tuple[str, str, Any]] = [
            *self.custom_models.routes(parent, self),
            ("POST", rf"{parent}/datasets", self._create_dataset),
            (
                "GET",
                rf"{parent}/datasets",
                lambda m, q, b: self._list(self.datasets, "datasets", q),
            ),
            ("POST", rf"({parent}/datasets/[^/:]+):import", self._import),
            ("GET", rf"({parent}/datasets/[^/:]+)", lambda m, q, b: self.datasets[m[1]]),
            ("GET", r"(projects/.+/operations/[^/]+)", lambda m, q, b: self.operations[m[1]]),
            ("POST", rf"{parent}/trainingPipelines", self._create_pipeline),
            (
                "GET",
                rf"{parent}/trainingPipelines",
                lambda m, q, b: self._list(self.pipelines, "trainingPipelines", q),
            ),
            ("GET", rf"({parent}/trainingPipelines/[^/:]+)", self._get_pipeline),
            ("POST", rf"({parent}/trainingPipelines/[^/:]+):cancel", self._cancel_pipeline),
            ("GET", rf"({parent}/models/[^/:]+)/evaluations", self._evaluations),
            ("GET", rf"({parent}/models/[^/:]+)", lambda m, q, b: self.models[m[1]]),
            ("POST", rf"{parent}/batchPredictionJobs", self._create_job),
            (
                "GET",
                rf"{parent}/batchPredictionJobs",
                lambda m, q, b: self._list(self.jobs, "batchPredictionJobs", q),
            ),
            ("GET", rf"({parent}/batchPredictionJobs/[^/:]+)", self._get_job),
            ("POST", rf"({parent}/batchPredictionJobs/[^/:]+):cancel", self._cancel_job),
            *self.pipeline_jobs.routes(parent),
        ]
        for verb, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                return handler(match, query, body)
        raise _Refused(404, "NOT_FOUND", f"no route for {method} {path}")

    def _new_name(self, parent: str, collection: str) -> str:
        return f"{parent}/{collection}/{next(self._ids)}"

    def _list(self, store: dict[str, dict[str, Any]], key: str, query: dict[str, list[str]]) -> Any:
        wanted = _LABEL_FILTER.findall(query.get("filter", [""])[0])
        found = [
            item
            for item in store.values()
            if all(item.get("labels", {}).get(k) == v for k, v in wanted)
        ]
        return {key: found} if found else {}

    def _operation(self, name: str, response_type: str, response: dict[str, Any]) -> Any:
        op = {"name": name, "done": True, "response": {"@type": _TYPE + response_type, **response}}
        self.operations[name] = op
        return op

    # -- datasets --

    def _create_dataset(self, match: re.Match[str], query: Any, body: Any) -> Any:
        name = self._new_name(match[1], "datasets")
        dataset = {**body, "name": name, "createTime": "2026-01-01T00:00:00Z"}
        self.datasets[name] = dataset
        return self._operation(f"{name}/operations/{next(self._ids)}", "Dataset", dataset)

    def _import(self, match: re.Match[str], query: Any, body: Any) -> Any:
        dataset = self.datasets[match[1]]
        uris = [u for config in body["importConfigs"] for u in config["gcsSource"]["uris"]]
        self.imports.setdefault(dataset["name"], []).extend(uris)
        return self._operation(
            f"{dataset['name']}/operations/{next(self._ids)}", "ImportDataResponse", {}
        )

    # -- training --

    def _create_pipeline(self, match: re.Match[str], query: Any, body: Any) -> Any:
        name = self._new_name(match[1], "trainingPipelines")
        pipeline = {**body, "name": name, "state": _PIPELINE_STEPS[0], "createTime": _now()}
        self.created[name] = time.monotonic()
        self.pipelines[name] = pipeline
        self._polls[name] = 0
        return pipeline

    def _get_pipeline(self, match: re.Match[str], query: Any, body: Any) -> Any:
        pipeline = self.pipelines[match[1]]
        if pipeline["state"] in _PIPELINE_STEPS:
            self._polls[pipeline["name"]] += 1
            polls = self._polls[pipeline["name"]]
            age = time.monotonic() - self.created.get(pipeline["name"], 0.0)
            if polls < self.training_polls or age < self.training_seconds:
                pipeline["state"] = _PIPELINE_STEPS[min(polls, len(_PIPELINE_STEPS) - 1)]
            else:
                self._finish_training(pipeline)
        elif pipeline["state"] == "PIPELINE_STATE_CANCELLING":
            pipeline["state"] = "PIPELINE_STATE_CANCELLED"
        return pipeline

    def _finish_training(self, pipeline: dict[str, Any]) -> None:
        if self.fail_training is not None:
            pipeline["state"] = "PIPELINE_STATE_FAILED"
            pipeline["error"] = {"code": 3, "message": self.fail_training}
            return
        parent = pipeline["name"].split("/trainingPipelines/")[0]
        model_name = self._new_name(parent, "models")
        model = {
            **pipeline.get("modelToUpload", {}),
            "name": model_name,
            "trainingPipeline": pipeline["name"],
        }
        self.models[model_name] = model
        pipeline["modelToUpload"] = model
        pipeline["state"] = "PIPELINE_STATE_SUCCEEDED"
        pipeline["endTime"] = _now()
        self.finished[pipeline["name"]] = time.monotonic()
        budget = int(pipeline["trainingTaskInputs"].get("budgetMilliNodeHours", 0))
        pipeline["trainingTaskMetadata"] = {
            "costMilliNodeHours": str(budget * 3 // 4),
            "successfulStopReason": "MODEL_CONVERGED",
        }

    def _cancel_pipeline(self, match: re.Match[str], query: Any, body: Any) -> Any:
        pipeline = self.pipelines[match[1]]
        if pipeline["state"] not in _PIPELINE_STEPS:
            raise _Refused(400, "FAILED_PRECONDITION", "the training pipeline has ended")
        pipeline["state"] = "PIPELINE_STATE_CANCELLING"
        return {}

    def _evaluations(self, match: re.Match[str], query: Any, body: Any) -> Any:
        model = self.models[match[1]]
        evaluation = {
            "name": f"{model['name']}/evaluations/1",
            "metricsSchemaUri": EVALUATION_SCHEMA,
            "metrics": {
                "boundingBoxMeanAveragePrecision": 0.71,
                "evaluatedBoundingBoxCount": 120,
                "boundingBoxMetrics": [
                    {
                        "iouThreshold": 0.5,
                        "meanAveragePrecision": 0.83,
                        "confidenceMetrics": [
                            {
                                "confidenceThreshold": 0.5,
                                "recall": 0.8,
                                "precision": 0.9,
                                "f1Score": 0.847,
                            },
                        ],
                    }
                ],
            },
        }
        return {"modelEvaluations": [evaluation]}

    # -- batch prediction --

    def _create_job(self, match: re.Match[str], query: Any, body: Any) -> Any:
        if body.get("model") not in self.models:
            raise _Refused(400, "INVALID_ARGUMENT", f"model {body.get('model')} does not exist")
        name = self._new_name(match[1], "batchPredictionJobs")
        job = {**body, "name": name, "state": _JOB_STEPS[0], "createTime": _now()}
        self.jobs[name] = job
        self._polls[name] = 0
        return job

    def _get_job(self, match: re.Match[str], query: Any, body: Any) -> Any:
        job = self.jobs[match[1]]
        if job["state"] in _JOB_STEPS:
            self._polls[job["name"]] += 1
            polls = self._polls[job["name"]]
            if polls < self.batch_polls:
                job["state"] = _JOB_STEPS[min(polls, len(_JOB_STEPS) - 1)]
            else:
                self._finish_job(job)
        elif job["state"] == "JOB_STATE_CANCELLING":
            job["state"] = "JOB_STATE_CANCELLED"
        return job

    def _cancel_job(self, match: re.Match[str], query: Any, body: Any) -> Any:
        job = self.jobs[match[1]]
        if job["state"] not in _JOB_STEPS:
            raise _Refused(400, "FAILED_PRECONDITION", "the job has ended")
        job["state"] = "JOB_STATE_CANCELLING"
        return {}

    def _finish_job(self, job: dict[str, Any]) -> None:
        if self.fail_batch_jobs > 0:
            self.fail_batch_jobs -= 1
            job["state"] = "JOB_STATE_FAILED"
            job["error"] = {"code": 8, "message": "Quota exceeded for online prediction nodes"}
            return
        truth = self._ground_truth(self.models[job["model"]])
        instances = [
            json.loads(line)
            for uri in job["inputConfig"]["gcsSource"]["uris"]
            for line in self._read(uri).splitlines()
            if line.strip()
        ]
        prefix = job["outputConfig"]["gcsDestination"]["outputUriPrefix"].rstrip("/")
        model_id = job["model"].rsplit("/", 1)[-1]
        directory = f"{prefix}/prediction-{model_id}-2026_01_01T00_00_00_000Z"
        predictions, errors = [], []
        for instance in instances:
            if instance["content"] in self.error_uris:
                errors.append(
                    {
                        "instance": instance,
                        "error": {
                            "status": "INVALID_ARGUMENT",
                            "message": "image could not be decoded",
                        },
                    }
                )
            else:
                predictions.append(
                    {
                        "instance": instance,
                        "prediction": self._noisy(self._truth_of(truth, instance["content"])),
                    }
                )
        self._write(f"{directory}/predictions_00001.jsonl", predictions)
        self._write(f"{directory}/errors_00001.jsonl", errors)
        job["outputInfo"] = {"gcsOutputDirectory": directory}
        job["state"] = "JOB_STATE_SUCCEEDED" if not errors else "JOB_STATE_PARTIALLY_SUCCEEDED"
        job["completionStats"] = {
            "successfulCount": str(len(predictions)),
            "failedCount": str(len(errors)),
        }

    def _ground_truth(self, model: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        pipeline = self.pipelines[model["trainingPipeline"]]
        dataset_id = pipeline["inputDataConfig"]["datasetId"]
        dataset = next(d for d in self.datasets if d.endswith("/datasets/" + dataset_id))
        truth: dict[str, list[dict[str, Any]]] = {}
        for uri in self.imports.get(dataset, []):
            for line in self._read(uri).splitlines():
                if line.strip():
                    row = json.loads(line)
                    truth.setdefault(row["imageGcsUri"], row.get("boundingBoxAnnotations", []))
        return truth

    def _truth_of(self, truth: dict[str, list[dict[str, Any]]], uri: str) -> list[dict[str, Any]]:
        if uri in truth:
            return truth[uri]
        return self.unseen_truth.get(uri.rsplit("/", 1)[-1], [])

    def _noisy(self, boxes: list[dict[str, Any]]) -> dict[str, Any]:
        """Most true boxes, jittered, with high scores; sometimes a low-scored false one."""
        rng = self._rng
        names, scores, bboxes = [], [], []
        for box in boxes:
            if rng.random() < 0.1:
                continue
            w, h = box["xMax"] - box["xMin"], box["yMax"] - box["yMin"]
            x0 = _clip(box["xMin"] + rng.uniform(-0.05, 0.05) * w)
            x1 = _clip(box["xMax"] + rng.uniform(-0.05, 0.05) * w)
            y0 = _clip(box["yMin"] + rng.uniform(-0.05, 0.05) * h)
            y1 = _clip(box["yMax"] + rng.uniform(-0.05, 0.05) * h)
            names.append(box["displayName"])
            scores.append(round(rng.uniform(0.6, 0.99), 4))
            bboxes.append([x0, x1, y0, y1])  # Vertex order: xMin, xMax, yMin, yMax
        if boxes and rng.random() < 0.3:
            x0, y0 = rng.uniform(0, 0.7), rng.uniform(0, 0.7)
            names.append(boxes[0]["displayName"])
            scores.append(round(rng.uniform(0.05, 0.4), 4))
            bboxes.append([x0, x0 + 0.2, y0, y0 + 0.2])
        return {
            "ids": [str(1000 + i) for i in range(len(names))],
            "displayNames": names,
            "confidences": scores,
            "bboxes": bboxes,
        }

    # -- GCS through the real storage client --

    def _read(self, uri: str) -> str:
        bucket, _, name = uri[5:].partition("/")
        return str(self.storage_client.bucket(bucket).blob(name).download_as_text())

    def _write(self, uri: str, rows: list[dict[str, Any]]) -> None:
        bucket, _, name = uri[5:].partition("/")
        data = "".join(json.dumps(row) + "\n" for row in rows)
        self.storage_client.bucket(bucket).blob(name).upload_from_string(
            data, content_type="application/jsonl"
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    """Listen backlog: hundreds of concurrent clients (the webhook storm tests) connect at once."""


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _error(status: int, code: str, message: str) -> Any:
    return {"error": {"code": status, "message": message, "status": code}}


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))
