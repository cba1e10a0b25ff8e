"""A fake Labelbox that the real ``labelbox`` SDK talks to over HTTP on 127.0.0.1.

It answers the GraphQL operations the adapter uses (routing on the operation name in the query
text, as the SDK 7.17 sends them), serves the export result/error streams as byte-ranged file
chunks and the prediction-import status files, records every request it receives, keeps what
was uploaded, and can inject faults (rate limits, 5xx, failed authentication, hard errors).

Test code only. Start it with :meth:`FakeLabelbox.start` (a free port is picked) and stop it with
:meth:`FakeLabelbox.stop`; ``tests/integration/labelbox/conftest.py`` wraps that in a fixture.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import uuid as uuidlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

API_KEY = "fake-labelbox-key-0123456789"
_OPERATION = re.compile(r"^\s*(?:query|mutation)\s+(\w+)")
_NOW = "2024-01-01T00:00:00.000Z"

# Fault kinds understood by FakeLabelbox.inject
RATE_LIMIT = "rate_limit"  # HTTP 429 {"message": "You have exceeded ..."} -> ApiLimitError
HTTP_503 = "http_503"  # HTTP 503 text body -> InternalServerError (the SDK retries it itself)
HTTP_500_FILE = "http_500"  # plain 500 on a file download -> requests HTTPError
AUTH = "auth"  # AUTHENTICATION_ERROR -> AuthenticationError
FATAL = "fatal"  # a GraphQL error the SDK does not retry (400 -> InvalidQueryError)


@dataclass
class RecordedRequest:
    method: str
    path: str
    operation: str
    variables: dict[str, Any]
    query: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    authorized: bool = True
    fault: str | None = None


@dataclass
class Fault:
    operation: str
    kind: str
    times: int = 1
    after: int = 0
    seen: int = 0


@dataclass
class ModelRunState:
    model_run_id: str
    model_id: str
    name: str
    export_path: Path
    errors_path: Path | None
    data_splits: dict[str, str]
    """data row id -> dataSplit (TRAINING, VALIDATION, TEST, UNASSIGNED) for annotationGroups."""
    statuses: list[dict[str, Any]] = field(default_factory=list)
    known_rows: set[str] | None = None
    """The data row ids of the export, read once (a 1M-row run is not re-read per import)."""


@dataclass
class ExportTaskState:
    """One export task: whatever was exported (a model run, a project, the catalog) is a
    result file, and maybe an errors file, served as byte-ranged chunks once it is COMPLETE."""

    task_id: str
    result_path: Path | None
    """None: the task found nothing (it has no result stream)."""
    errors_path: Path | None
    polls_left: int
    failed: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    filters: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportState:
    import_id: str
    model_run_id: str
    name: str
    rows: list[dict[str, Any]]
    statuses: list[dict[str, Any]]
    polls_left: int
    failed: bool = False
    accepted: int = 0
    """Rows accepted (``rows`` is empty when the fake does not keep payloads)."""

    @property
    def state(self) -> str:
        if self.failed:
            return "FAILED"
        return "RUNNING" if self.polls_left > 0 else "FINISHED"


class FakeLabelbox:
    """In-memory Labelbox. Thread-safe: every handler takes ``self.lock``."""

    def __init__(
        self,
        workdir: Path,
        *,
        api_key: str = API_KEY,
        export_chunk_bytes: int = 1 << 20,
        export_polls: int = 1,
        import_polls: int = 1,
        keep_payloads: bool = True,
    ) -> None:
        self.workdir = workdir
        self.keep_payloads = keep_payloads
        """False (benchmarks): uploaded files, accepted rows and success statuses are counted,
        not kept, so the fake's memory stays flat over millions of uploaded rows."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.api_key = api_key
        self.export_chunk_bytes = export_chunk_bytes
        self.export_polls = export_polls
        """How many task look-ups answer IN_PROGRESS before an export task is COMPLETE."""
        self.import_polls = import_polls
        """How many look-ups answer RUNNING before a prediction import is FINISHED."""
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.model_runs: dict[str, ModelRunState] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.ontologies: dict[str, dict[str, Any]] = {}
        self.export_tasks: dict[str, ExportTaskState] = {}
        self.imports: dict[str, ImportState] = {}
        self._import_names: set[tuple[str, str]] = set()
        self.faults: list[Fault] = []
        self.on_request: Callable[[RecordedRequest], None] | None = None
        """Called (outside the lock) after each request is recorded; tests use it to kill a
        client mid-way."""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        from tests.fakes.labelbox_projects import FakeProjects

        self.projects = FakeProjects(self)
        """Projects, MAL imports and batches (``tests/fakes/labelbox_projects.py``)."""
        from tests.fakes.labelbox_catalog import FakeCatalog

        self.catalog = FakeCatalog(self)
        """Datasets, their rows, and project / catalog exports (``labelbox_catalog.py``)."""

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> FakeLabelbox:
        handler = type("_Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def endpoint(self) -> str:
        """The GraphQL endpoint to give the SDK (``VMT_LABELBOX_ENDPOINT``)."""
        return f"{self.base_url}/graphql"

    # ---------------------------------------------------------------- set-up
    def add_model_run(
        self,
        model_run_id: str,
        *,
        rows: Iterable[dict[str, Any]],
        classes: Iterable[str],
        model_id: str = "model-1",
        data_splits: dict[str, str] | None = None,
        export_errors: Iterable[dict[str, Any]] = (),
    ) -> ModelRunState:
        """Register a model run whose export streams ``rows`` (written to disk here, so the
        fake's own memory stays flat however many rows there are)."""
        export_path = self.workdir / f"{model_run_id}.export.ndjson"
        with export_path.open("wb") as out:
            for row in rows:
                out.write(json.dumps(row, separators=(",", ":")).encode() + b"\n")
        errors = list(export_errors)
        errors_path = None
        if errors:
            errors_path = self.workdir / f"{model_run_id}.errors.ndjson"
            errors_path.write_bytes(b"".join(json.dumps(e).encode() + b"\n" for e in errors))
        ontology_id = f"ontology-{model_id}"
        tools = [
            {
                "tool": "rectangle",
                "name": name,
                "featureSchemaId": f"fs-{name}",
                "schemaNodeId": f"sn-{name}",
                "color": "#ff0000",
                "required": False,
                "classifications": [],
            }
            for name in classes
        ]
        with self.lock:
            self.ontologies[ontology_id] = {"tools": tools, "classifications": []}
            self.models[model_id] = {"name": f"model {model_id}", "ontologyId": ontology_id}
            state = ModelRunState(
                model_run_id=model_run_id,
                model_id=model_id,
                name=f"run {model_run_id}",
                export_path=export_path,
                errors_path=errors_path,
                data_splits=dict(data_splits or {}),
            )
            self.model_runs[model_run_id] = state
        return state

    def inject(self, operation: str, kind: str, *, times: int = 1, after: int = 0) -> None:
        """Answer the next ``times`` requests for ``operation`` (after letting ``after`` pass)
        with the fault ``kind``. File downloads are named ``file:export`` / ``file:import``."""
        with self.lock:
            self.faults.append(Fault(operation, kind, times=times, after=after))

    # ---------------------------------------------------------------- queries for tests
    def operations(self) -> list[str]:
        with self.lock:
            return [r.operation for r in self.requests]

    def statuses(self, model_run_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.model_runs[model_run_id].statuses)

    def imports_for(self, model_run_id: str) -> list[ImportState]:
        with self.lock:
            return [i for i in self.imports.values() if i.model_run_id == model_run_id]

    def uploaded_rows(self, model_run_id: str) -> list[dict[str, Any]]:
        return [row for imp in self.imports_for(model_run_id) for row in imp.rows]

    def predictions(self, model_run_id: str) -> list[dict[str, Any]]:
        return [r for r in self.uploaded_rows(model_run_id) if "metricName" not in r]

    def metrics(self, model_run_id: str) -> list[dict[str, Any]]:
        return [r for r in self.uploaded_rows(model_run_id) if "metricName" in r]

    # ---------------------------------------------------------------- request handling
    def take_fault(self, operation: str) -> str | None:
        with self.lock:
            for fault in self.faults:
                if fault.operation != operation or fault.times <= 0:
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    return None
                fault.times -= 1
                return fault.kind
        return None

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(request)
        if self.on_request is not None:
            self.on_request(request)

    def graphql(self, operation: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The ``data`` of the answer, or raise _GraphQLError."""
        from tests.fakes.labelbox_catalog import CATALOG_OPERATIONS
        from tests.fakes.labelbox_projects import OPERATIONS

        with self.lock:
            project_handler = OPERATIONS.get(operation)
            if project_handler is not None:
                return project_handler(self.projects, query, variables)
            catalog_handler = CATALOG_OPERATIONS.get(operation)
            if catalog_handler is not None:
                return catalog_handler(self.catalog, query, variables)
            handler = _OPERATIONS.get(operation)
            if handler is None:
                raise _GraphQLError(f"unknown operation {operation}", "GRAPHQL_VALIDATION_FAILED")
            return handler(self, query, variables)

    # ------------------------------------------------------------ operation handlers
    def _model_run(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        mr = self.model_runs.get(str(v.get("param_0")))
        if mr is None:
            return {"modelRun": None}
        return {
            "modelRun": {
                "id": mr.model_run_id,
                "name": mr.name,
                "modelId": mr.model_id,
                "createdAt": _NOW,
                "updatedAt": _NOW,
                "createdBy": "user-1",
                "modelAppId": "app-1",
                "trainingMetadata": None,
            }
        }

    def _model(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        model_id = str(v.get("param_0"))
        model = self.models.get(model_id)
        return {"model": None if model is None else {"id": model_id, **model}}

    def _ontology(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        ontology_id = str(v.get("param_0"))
        normalized = self.ontologies.get(ontology_id)
        if normalized is None:
            return {"ontology": None}
        return {
            "ontology": {
                "id": ontology_id,
                "name": "ontology",
                "description": "",
                "mediaType": "Image",
                "normalized": normalized,
                "objectSchemaCount": len(normalized["tools"]),
                "classificationSchemaCount": 0,
                "createdAt": _NOW,
                "updatedAt": _NOW,
            }
        }

    def _user(self, _q: str, _v: dict[str, Any]) -> dict[str, Any]:
        return {"user": _USER}

    def _metadata_ontology(self, _q: str, _v: dict[str, Any]) -> dict[str, Any]:
        return {"customMetadataOntology": []}

    def _created_tasks(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        wanted = [str(value) for value in v.values() if str(value) in self.export_tasks]
        nodes = [self._task_node(self.export_tasks[task_id]) for task_id in wanted]
        nodes += [n for value in v.values() if (n := self.projects.task_node(str(value)))]
        return {"user": {"createdTasks": nodes}}

    def _task_node(self, task: ExportTaskState) -> dict[str, Any]:
        if task.polls_left > 0:
            task.polls_left -= 1
            status = "IN_PROGRESS"
        else:
            status = "FAILED" if task.failed else "COMPLETE"
        return {
            "id": task.task_id,
            "name": "export",
            "status": status,
            "type": "export-data-rows",
            "completionPercentage": 100.0 if status != "IN_PROGRESS" else 50.0,
            "createdAt": _NOW,
            "updatedAt": _NOW,
            "metadata": {},
            "result": None,
            "errors": None,
        }

    def _export(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        spec = v["input"]
        model_run_id = spec["filters"]["modelRunId"]
        if model_run_id not in self.model_runs:
            raise _GraphQLError("model run not found", "RESOURCE_NOT_FOUND")
        mr = self.model_runs[model_run_id]
        task = self.new_export_task(mr.export_path, mr.errors_path, spec)
        return {"exportDataRowsInModelRun": {"taskId": task.task_id, "isStreamable": True}}

    def new_export_task(
        self, result_path: Path | None, errors_path: Path | None, spec: dict[str, Any]
    ) -> ExportTaskState:
        """An export task (IN_PROGRESS for ``export_polls`` look-ups) that streams these files."""
        task_id = f"task-{uuidlib.uuid4().hex[:12]}"
        task = ExportTaskState(
            task_id,
            result_path,
            errors_path,
            polls_left=self.export_polls,
            params=spec.get("params") or {},
            filters=spec.get("filters") or {},
        )
        self.export_tasks[task_id] = task
        return task

    def _stream_path(self, v: dict[str, Any]) -> tuple[ExportTaskState, Path | None]:
        task = self.export_tasks[v["where"]["id"]]
        return task, task.result_path if v["streamType"] == "RESULT" else task.errors_path

    def _metadata_header(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        _task, path = self._stream_path(v)
        if path is None:
            return {"task": {"exportMetadataHeader": None}}
        with path.open("rb") as f:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        header = {"totalSize": path.stat().st_size, "totalLines": lines}
        return {"task": {"exportMetadataHeader": header}}

    def _file_from_offset(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        task, path = self._stream_path(v)
        assert path is not None
        start = int(v["offset"])
        with path.open("rb") as f:
            f.seek(start)
            data = f.read(self.export_chunk_bytes)
        cut = data.rfind(b"\n") + 1 or len(data)  # whole lines, unless one line is huge
        end = start + cut - 1
        stream = v["streamType"].lower()
        return {
            "task": {
                "exportFileFromOffset": {
                    "offsets": {"start": start, "end": end},
                    "lines": {"start": 0, "end": data[:cut].count(b"\n") - 1},
                    "file": f"{self.base_url}/files/export/{task.task_id}/{stream}/{start}/{end}",
                }
            }
        }

    def _data_rows(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        mr = self.model_runs[v["modelRunId"]]
        ids = sorted(mr.data_splits)
        start = int(v.get("from") or 0)
        first = int(v.get("first") or 100)
        page = ids[start : start + first]
        nodes = [
            {
                "id": f"ag-{data_row_id}",
                "dataSplit": mr.data_splits[data_row_id],
                "labelId": None,
                "modelRunId": mr.model_run_id,
                "dataRow": {
                    "id": data_row_id,
                    "createdAt": _NOW,
                    "updatedAt": _NOW,
                    "externalId": None,
                    "globalKey": None,
                    "rowData": f"https://example.invalid/{data_row_id}.png",
                    "mediaAttributes": {},
                    "customMetadata": [],
                    "metadataFields": [],
                },
            }
            for data_row_id in page
        ]
        end = start + len(page)
        cursor = str(end) if end < len(ids) else None
        return {"annotationGroups": {"nodes": nodes, "pageInfo": {"endCursor": cursor}}}

    def _update_status(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        mr = self.model_runs.get(v["modelRunId"])
        if mr is None:
            raise _GraphQLError("model run not found", "RESOURCE_NOT_FOUND")
        data = v["data"]
        message = data.get("errorMessage")
        if message is not None and len(message) > 255:
            raise _GraphQLError("errorMessage longer than 255 characters", "MALFORMED_REQUEST")
        mr.statuses.append(dict(data))
        return {"updateTrainingPipeline": {"status": data["status"]}}

    def _import_node(self, imp: ImportState) -> dict[str, Any]:
        base = f"{self.base_url}/files/import/{imp.import_id}"
        return {
            "id": imp.import_id,
            "name": imp.name,
            "modelRunId": imp.model_run_id,
            "state": imp.state,
            "progress": "100%" if imp.state != "RUNNING" else "0%",
            "inputFileUrl": f"{base}/input",
            "errorFileUrl": f"{base}/errors",
            "statusFileUrl": f"{base}/status",
        }

    def create_import(self, variables: dict[str, Any], payload: bytes) -> dict[str, Any]:
        with self.lock:
            model_run_id = variables["modelRunId"]
            name = variables["name"]
            mr = self.model_runs.get(model_run_id)
            if mr is None:
                raise _GraphQLError("model run not found", "RESOURCE_NOT_FOUND")
            if (model_run_id, name) in self._import_names:
                raise _GraphQLError(f"import named {name} already exists", "RESOURCE_CONFLICT")
            rows = [json.loads(line) for line in payload.splitlines() if line.strip()]
            if not rows:
                raise _GraphQLError("empty import", "MALFORMED_REQUEST")
            known = self._known_rows(mr)
            tools = {t["name"] for t in self.ontologies[f"ontology-{mr.model_id}"]["tools"]}
            statuses = [_row_status(row, known, tools) for row in rows]
            accepted = [r for r, s in zip(rows, statuses, strict=True) if s["status"] == "SUCCESS"]
            imp = ImportState(
                import_id=f"import-{uuidlib.uuid4().hex[:12]}",
                model_run_id=model_run_id,
                name=name,
                rows=accepted if self.keep_payloads else [],
                statuses=statuses
                if self.keep_payloads
                else [s for s in statuses if s["status"] != "SUCCESS"],
                polls_left=self.import_polls,
                accepted=len(accepted),
            )
            self.imports[imp.import_id] = imp
            self._import_names.add((model_run_id, name))
            return {"createModelErrorAnalysisPredictionImport": self._import_node(imp)}

    def _known_rows(self, mr: ModelRunState) -> set[str]:
        if mr.data_splits:
            return set(mr.data_splits)
        if mr.known_rows is None:
            known: set[str] = set()
            with mr.export_path.open("rb") as f:
                for line in f:
                    known.add(json.loads(line)["data_row"]["id"])
            mr.known_rows = known
        return mr.known_rows

    def _find_import(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        for imp in self.imports.values():
            if imp.model_run_id == v["modelRunId"] and imp.name == v["name"]:
                node = self._import_node(imp)
                if imp.polls_left > 0:
                    imp.polls_left -= 1
                return {"modelErrorAnalysisPredictionImport": node}
        raise _GraphQLError("import not found", "RESOURCE_NOT_FOUND")

    def file(self, path: str) -> bytes | None:
        """Content of a served file, or None when unknown."""
        parts = path.strip("/").split("/")
        with self.lock:
            if parts[:2] == ["files", "export"] and len(parts) == 6:
                task_id, stream, start, end = parts[2], parts[3], int(parts[4]), int(parts[5])
                _task, source = self._stream_path(
                    {"where": {"id": task_id}, "streamType": stream.upper()}
                )
                if source is None:
                    return None
                with source.open("rb") as f:
                    f.seek(start)
                    return f.read(end - start + 1)
            if parts[:2] == ["files", "import"] and len(parts) == 4:
                return import_file(self.imports.get(parts[2]), parts[3])
            return self.projects.file(parts)


class ImportFiles(Protocol):
    rows: list[dict[str, Any]]
    statuses: list[dict[str, Any]]


def import_file(imp: ImportFiles | None, part: str) -> bytes | None:
    """The ``input``, ``status`` or ``errors`` file of an import (MEA or MAL), as NDJSON."""
    if imp is None:
        return None
    if part == "input":
        return _ndjson(imp.rows)
    if part == "status":
        return _ndjson(imp.statuses)
    if part == "errors":
        return _ndjson([s for s in imp.statuses if s["status"] != "SUCCESS"])
    return None


def _row_status(row: dict[str, Any], known: set[str], tools: set[str]) -> dict[str, Any]:
    data_row_id = row.get("dataRow", {}).get("id")
    errors = []
    if data_row_id not in known:
        errors.append({"name": "DataRowNotFound", "message": f"data row {data_row_id} not found"})
    if "metricName" not in row and row.get("name") not in tools:
        errors.append({"name": "FeatureNotFound", "message": f"no feature named {row.get('name')}"})
    if "metricName" not in row and "confidence" in row and not 0 <= row["confidence"] <= 1:
        errors.append({"name": "InvalidConfidence", "message": "confidence outside [0, 1]"})
    return {
        "uuid": row.get("uuid"),
        "dataRow": {"id": data_row_id},
        "status": "FAILURE" if errors else "SUCCESS",
        **({"errors": errors} if errors else {}),
    }


def _ndjson(rows: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


_USER = {
    "id": "user-1",
    "email": "user@example.invalid",
    "name": "Test User",
    "nickname": "test",
    "picture": "",
    "isExternalUser": False,
    "isViewer": False,
    "lastLoginAt": _NOW,
    "createdAt": _NOW,
    "updatedAt": _NOW,
}

_OPERATIONS: dict[str, Callable[[FakeLabelbox, str, dict[str, Any]], dict[str, Any]]] = {
    "GetModelRunPyApi": FakeLabelbox._model_run,
    "GetModelPyApi": FakeLabelbox._model,
    "GetOntologyPyApi": FakeLabelbox._ontology,
    "GetUserPyApi": FakeLabelbox._user,
    "GetUserCreatedTasksPyApi": FakeLabelbox._created_tasks,
    "exportDataRowsInModelRunPyApi": FakeLabelbox._export,
    "GetExportMetadataHeaderPyApi": FakeLabelbox._metadata_header,
    "GetExportFileFromOffsetPyApi": FakeLabelbox._file_from_offset,
    "modelRunPyApi": FakeLabelbox._data_rows,
    "GetMetadataOntologyBetaPyApi": FakeLabelbox._metadata_ontology,
    "setPipelineStatusPyApi": FakeLabelbox._update_status,
    "getModelErrorAnalysisPredictionImportPyApi": FakeLabelbox._find_import,
}


class _GraphQLError(Exception):
    def __init__(self, message: str, code: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    def body(self) -> dict[str, Any]:
        extensions: dict[str, Any] = {"code": self.code}
        if self.status is not None:
            extensions["exception"] = {"status": self.status}
        return {"data": None, "errors": [{"message": self.message, "extensions": extensions}]}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLabelbox
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    # ------------------------------------------------------------------ GET: files
    def do_GET(self) -> None:
        kind = "file:export" if self.path.startswith("/files/export/") else "file:import"
        fault = self.fake.take_fault(kind)
        self.fake.record(RecordedRequest("GET", self.path, kind, {}, fault=fault))
        if fault is not None:
            self._send(503 if fault == HTTP_503 else 500, b"injected failure", "text/plain")
            return
        content = self.fake.file(self.path)
        if content is None:
            self._send(404, b"not found", "text/plain")
            return
        self._send(200, content, "application/x-ndjson")

    # ------------------------------------------------------------------ POST: GraphQL
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "")
        files: dict[str, bytes] = {}
        if content_type.startswith("multipart/form-data"):
            fields = _parse_multipart(content_type, body)
            operations = json.loads(fields.pop("operations"))
            fields.pop("map", None)
            files = fields
        else:
            operations = json.loads(body or b"{}")
        query = operations.get("query") or ""
        variables = operations.get("variables") or {}
        match = _OPERATION.match(query)
        operation = match.group(1) if match else "?"
        authorized = self.headers.get("Authorization") == f"Bearer {self.fake.api_key}"
        fault = None if not authorized else self.fake.take_fault(operation)
        self.fake.record(
            RecordedRequest(
                "POST",
                self.path,
                operation,
                variables,
                query=query,
                files=files if self.fake.keep_payloads else {},
                authorized=authorized,
                fault=fault,
            )
        )
        if not authorized or fault == AUTH:
            err = _GraphQLError("Invalid API key", "AUTHENTICATION_ERROR")
            self._send_json(401, err.body())
            return
        if fault == RATE_LIMIT:
            self._send_json(429, {"message": "You have exceeded the rate limit (injected)"})
            return
        if fault == HTTP_503:
            self._send(503, b"upstream unavailable (injected)", "text/plain")
            return
        if fault == FATAL:
            err = _GraphQLError("injected fatal error", "INTERNAL_SERVER_ERROR", status=400)
            self._send_json(200, err.body())
            return
        from tests.fakes.labelbox_projects import EXPERIMENTAL_OPERATIONS

        experimental = operation == "setPipelineStatusPyApi" or operation in EXPERIMENTAL_OPERATIONS
        expected_path = "/_gql" if experimental else "/graphql"
        try:
            if self.path != expected_path:
                raise _GraphQLError(f"{operation} is not served on {self.path}", "NOT_FOUND")
            if operation == "createMEAPredictionImportByFilePyApi":
                payload = next(iter(files.values()), b"")
                data = self.fake.create_import(variables, payload)
            elif operation == "createMALPredictionImportByFilePyApi":
                payload = next(iter(files.values()), b"")
                data = self.fake.projects.create_mal_import(variables, payload)
            else:
                data = self.fake.graphql(operation, query, variables)
        except _GraphQLError as exc:
            self._send_json(200, exc.body())
            return
        self._send_json(200, {"data": data})

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _parse_multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields


def make_export_row(
    index: int,
    *,
    model_run_id: str,
    model_id: str = "model-1",
    split: str | None = "training",
    boxes: Iterable[tuple[str, float, float, float, float]] = (("car", 10.0, 20.0, 30.0, 40.0),),
    row_data: str | None = None,
    width: int = 640,
    height: int = 480,
) -> dict[str, Any]:
    """One model-run export row (export v2 shape); ``boxes`` are (name, left, top, w, h)."""
    run: dict[str, Any] = {
        "name": "run",
        "labels": [
            {
                "id": f"label-{index}",
                "annotations": {
                    "objects": [
                        {
                            "feature_id": f"f-{index}-{k}",
                            "feature_schema_id": f"fs-{name}",
                            "name": name,
                            "annotation_kind": "ImageBoundingBox",
                            "classifications": [],
                            "bounding_box": {"left": x, "top": y, "width": w, "height": h},
                        }
                        for k, (name, x, y, w, h) in enumerate(boxes)
                    ],
                    "classifications": [],
                    "relationships": [],
                },
            }
        ],
        "predictions": [],
    }
    if split is not None:
        run["split"] = split
    return {
        "data_row": {
            "id": f"dr-{index:06d}",
            "global_key": f"img-{index:06d}.png",
            "row_data": row_data or f"https://images.example.invalid/img-{index:06d}.png",
        },
        "media_attributes": {"width": width, "height": height, "mime_type": "image/png"},
        "experiments": {model_id: {"name": "model", "runs": {model_run_id: run}}},
    }
