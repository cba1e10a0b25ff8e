"""Model upload and batch prediction on custom-container models, for the fake Vertex AI REST API
(``FakeVertex.custom_models``; its routes are looked at before the others).

- ``POST {parent}/models:upload?...`` (body ``{"model": {...}, "modelId": ID}``): a long-running
  operation ``{parent}/models/ID/operations/N``, done at its ``upload_polls``-th GET or
  ``upload_seconds`` after it started, whoever looks (as Vertex's go on without us); the model
  exists (``FakeVertex.models``) once it is done. A ``modelId`` already used (model or upload in
  flight) is refused 409 ALREADY_EXISTS, as Vertex does.
- ``GET {parent}/models?filter=labels.k="v"``: the models carrying that label;
  ``GET {parent}/models/ID``.
- ``GET {parent}/batchPredictionJobs/ID`` of a job on an uploaded model (other jobs: AutoML's
  behaviour, unchanged): the job runs the model's container as Vertex would. Its command (``vmt
  serve-model``) is started as a local process (this interpreter, ``PYTHONPATH`` kept) on a free
  port of 127.0.0.1 with ``AIP_HTTP_PORT``, ``AIP_HEALTH_ROUTE``, ``AIP_PREDICT_ROUTE``,
  ``AIP_STORAGE_URI`` (the model's ``artifactUri``), its ``containerSpec.env`` and
  ``STORAGE_EMULATOR_HOST``; once its
  health route answers 200, the instances (the job's JSONL input, read from the emulator) are
  POSTed in batches of ``manualBatchTuningParameters.batchSize`` with ``modelParameters`` as
  ``parameters``, and ``predictions_00001.jsonl`` / ``errors_00001.jsonl`` are written in
  Vertex's layout (a request answered with an error status: each of its instances in the errors
  file). A container that never becomes healthy fails the job with its last output.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.fakes.vertex_pipeline_jobs import Refused

if TYPE_CHECKING:
    from tests.fakes.vertex_server import FakeVertex

_TYPE = "type.googleapis.com/google.cloud.aiplatform.v1."
_SRC = Path(__file__).resolve().parents[2] / "src"
_RUNNING = ("JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Run:
    """A batch job's container at work: its outcome once the thread ends."""

    stop: threading.Event = field(default_factory=threading.Event)
    outcome: dict[str, Any] | None = None
    process: subprocess.Popen[bytes] | None = None
    log: Any = None
    """The container's output (a temporary file)."""


@dataclass
class FakeCustomModels:
    upload_polls: int = 2
    """GETs of an upload operation until it is done."""
    upload_seconds: float = 1.0
    """Seconds after which an upload is done whether or not its operation was looked at."""
    health_timeout_s: float = 180.0
    """How long the container may take to answer its health route."""
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Operation name -> the operation (as answered)."""
    upload_requests: int = 0
    """POSTs to models:upload, refused ones included."""
    served: list[dict[str, str]] = field(default_factory=list)
    """The AIP_* environment of every container started."""

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[str, dict[str, Any]] = {}
        """Operation name -> the model it creates when done."""
        self._polls: dict[str, int] = {}
        self._started: dict[str, float] = {}
        self._runs: dict[str, _Run] = {}
        self._vertex: FakeVertex | None = None

    def routes(self, parent: str, vertex: FakeVertex) -> list[tuple[str, str, Any]]:
        self._vertex = vertex
        return [
            ("POST", rf"({parent})/models:upload", self._upload),
            ("GET", rf"({parent}/models/[^/:]+/operations/[^/]+)", self._get_operation),
            ("GET", rf"{parent}/models", self._list_models),
            ("GET", rf"({parent}/models/[^/:]+)", self._get_model),
            ("GET", rf"({parent}/batchPredictionJobs/[^/:]+)", self._get_job),
        ]

    def close(self) -> None:
        for run in self._runs.values():
            run.stop.set()
            if run.process is not None and run.process.poll() is None:
                run.process.kill()
                run.process.wait()

    # -- upload --

    def _upload(self, match: Any, query: Any, body: Any) -> Any:
        assert self._vertex is not None
        self.upload_requests += 1
        model_id = body.get("modelId") or str(next(self._vertex._ids))
        name = f"{match[1]}/models/{model_id}"
        if name in self._vertex.models or any(m["name"] == name for m in self._pending.values()):
            raise Refused(409, "ALREADY_EXISTS", f"Model {name} already exists")
        spec = body["model"].get("containerSpec") or {}
        if not spec.get("imageUri"):
            raise Refused(400, "INVALID_ARGUMENT", "model.containerSpec.imageUri is required")
        now = _now()
        model = {
            **body["model"],
            "name": name,
            "versionId": "1",
            "createTime": now,
            "updateTime": now,
            "supportedInputStorageFormats": ["jsonl"],
            "supportedOutputStorageFormats": ["jsonl"],
        }
        op_name = f"{name}/operations/{next(self._ids)}"
        self._pending[op_name] = model
        self._polls[op_name] = 0
        self._started[op_name] = time.monotonic()
        operation = {
            "name": op_name,
            "done": False,
            "metadata": {
                "@type": _TYPE + "UploadModelOperationMetadata",
                "genericMetadata": {"createTime": now, "updateTime": now},
            },
        }
        self.uploads[op_name] = operation
        return operation

    def _get_operation(self, match: Any, query: Any, body: Any) -> Any:
        operation = self.uploads[match[1]]
        if not operation["done"]:
            self._polls[operation["name"]] += 1
        self._settle()
        return operation

    def _list_models(self, match: Any, query: Any, body: Any) -> Any:
        assert self._vertex is not None
        self._settle()
        return self._vertex._list(self._vertex.models, "models", query)

    def _get_model(self, match: Any, query: Any, body: Any) -> Any:
        assert self._vertex is not None
        self._settle()
        return self._vertex.models[match[1]]

    def _settle(self) -> None:
        """Finish the uploads whose time has come."""
        assert self._vertex is not None
        for op_name, model in list(self._pending.items()):
            age = time.monotonic() - self._started[op_name]
            if self._polls[op_name] < self.upload_polls and age < self.upload_seconds:
                continue
            del self._pending[op_name]
            self._vertex.models[model["name"]] = model
            operation = self.uploads[op_name]
            operation["done"] = True
            operation["response"] = {
                "@type": _TYPE + "UploadModelResponse",
                "model": model["name"],
                "modelVersionId": "1",
            }

    # -- batch prediction on an uploaded model --

    def _ours(self, job: dict[str, Any]) -> bool:
        assert self._vertex is not None
        model = self._vertex.models.get(job.get("model", ""), {})
        return bool(model.get("containerSpec"))

    def _get_job(self, match: Any, query: Any, body: Any) -> Any:
        assert self._vertex is not None
        job = self._vertex.jobs[match[1]]
        if not self._ours(job):
            return self._vertex._get_job(match, query, body)
        run = self._runs.get(job["name"])
        if job["state"] == "JOB_STATE_CANCELLING":
            if run is not None:
                run.stop.set()
            job["state"] = "JOB_STATE_CANCELLED"
        elif job["state"] in _RUNNING:
            if run is None:
                run = self._runs[job["name"]] = _Run()
                model = self._vertex.models[job["model"]]
                threading.Thread(
                    target=self._run_job, args=(run, dict(job), model), daemon=True
                ).start()
                job["startTime"] = _now()
            if run.outcome is not None:
                job.update(run.outcome)
                job["endTime"] = job["updateTime"] = _now()
            else:
                job["state"] = "JOB_STATE_RUNNING"
        return job

    def _run_job(self, run: _Run, job: dict[str, Any], model: dict[str, Any]) -> None:
        try:
            run.outcome = self._predict_all(run, job, model)
        except _ContainerFailed as exc:
            run.outcome = {"state": "JOB_STATE_FAILED", "error": {"code": 13, "message": str(exc)}}
        finally:
            if run.process is not None and run.process.poll() is None:
                run.process.terminate()
                try:
                    run.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    run.process.kill()
                    run.process.wait()
            if run.log is not None:
                run.log.close()

    def _predict_all(self, run: _Run, job: dict[str, Any], model: dict[str, Any]) -> Any:
        assert self._vertex is not None
        spec = model["containerSpec"]
        url, predict_route = self._start_container(run, spec, model.get("artifactUri", ""))
        instances = [
            json.loads(line)
            for uri in job["inputConfig"]["gcsSource"]["uris"]
            for line in self._vertex._read(uri).splitlines()
            if line.strip()
        ]
        size = int(job.get("manualBatchTuningParameters", {}).get("batchSize") or 64)
        predictions: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for start in range(0, len(instances), size):
            if run.stop.is_set():
                raise _ContainerFailed("cancelled")
            batch = instances[start : start + size]
            status, answer = _post(
                url + predict_route,
                {"instances": batch, "parameters": job.get("modelParameters")},
            )
            answered = answer.get("predictions") if isinstance(answer, dict) else None
            if status != 200 or not isinstance(answered, list) or len(answered) != len(batch):
                message = f"the container answered {status}: {json.dumps(answer)[:300]}"
                errors += [
                    {"instance": i, "error": {"status": "INTERNAL", "message": message}}
                    for i in batch
                ]
                continue
            predictions += [
                {"instance": i, "prediction": p} for i, p in zip(batch, answered, strict=True)
            ]
        prefix = job["outputConfig"]["gcsDestination"]["outputUriPrefix"].rstrip("/")
        model_id = model["name"].rsplit("/", 1)[-1]
        directory = f"{prefix}/prediction-{model_id}-2026_01_01T00_00_00_000Z"
        self._vertex._write(f"{directory}/predictions_00001.jsonl", predictions)
        self._vertex._write(f"{directory}/errors_00001.jsonl", errors)
        return {
            "state": "JOB_STATE_SUCCEEDED" if not errors else "JOB_STATE_PARTIALLY_SUCCEEDED",
            "outputInfo": {"gcsOutputDirectory": directory},
            "completionStats": {
                "successfulCount": str(len(predictions)),
                "failedCount": str(len(errors)),
            },
        }

    def _start_container(self, run: _Run, spec: dict[str, Any], artifact_uri: str) -> Any:
        """Start the container's command; (its URL, predict route) once it is healthy."""
        assert self._vertex is not None
        from tests.fakes.gcp import free_port

        command = list(spec.get("command") or [])
        if command[:1] != ["vmt"]:
            raise _ContainerFailed(f"the fake runs only our image's `vmt` commands: {command}")
        port = free_port()
        aip = {
            "AIP_HTTP_PORT": str(port),
            "AIP_HEALTH_ROUTE": spec.get("healthRoute") or "/health",
            "AIP_PREDICT_ROUTE": spec.get("predictRoute") or "/predict",
            "AIP_STORAGE_URI": artifact_uri,
        }
        self.served.append(aip)
        env = {
            **os.environ,
            **{item["name"]: item.get("value", "") for item in spec.get("env") or []},
            **aip,
            "STORAGE_EMULATOR_HOST": str(self._vertex.storage_client.api_endpoint),
            "VMT_GCP_ANONYMOUS_CREDENTIALS": "true",
            "VMT_VERTEX_CUSTOM_SERVE_HOST": "127.0.0.1",
            "PYTHONPATH": os.pathsep.join([str(_SRC), os.environ.get("PYTHONPATH", "")]),
        }
        run.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed when the run ends)
        run.process = subprocess.Popen(
            [sys.executable, "-m", "vmt", *command[1:], *(spec.get("args") or [])],
            env=env,
            stdout=run.log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + self.health_timeout_s
        while time.monotonic() < deadline and not run.stop.is_set():
            if run.process.poll() is not None:
                run.log.seek(0)
                tail = run.log.read()[-600:].decode(errors="replace")
                raise _ContainerFailed(f"the container exited {run.process.returncode}: {tail}")
            status, _ = _get(url + aip["AIP_HEALTH_ROUTE"])
            if status == 200:
                return url, aip["AIP_PREDICT_ROUTE"]
            time.sleep(0.1)
        raise _ContainerFailed("the container did not become healthy")


class _ContainerFailed(Exception):
    pass


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except OSError:
        return 0, None


def _post(url: str, payload: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body or b"null")
        except ValueError:
            return exc.code, body.decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)
