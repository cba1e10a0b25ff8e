"""The project side of the fake Labelbox: projects with an ontology and labelled rows,
model-assisted-labelling (MAL) imports, batches (sync, and async through a task), and the model
run calls of ``vmt publish`` (``upsert_data_rows`` and its registration task).

``tests/fakes/labelbox_server.py`` registers these operations (names as the labelbox SDK 7.17
sends them, read from its source: ``schema/annotation_import.py`` ``MALPredictionImport``,
``schema/project.py`` ``create_batch`` / ``batches``, ``client.get_batch``,
``schema/model_run.py`` ``upsert_data_rows``). State lives on ``FakeLabelbox.projects``.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes.labelbox_server import _NOW, _GraphQLError, import_file

if TYPE_CHECKING:
    from tests.fakes.labelbox_server import FakeLabelbox

MAX_BATCH_ROWS = 100_000


@dataclass
class BatchState:
    batch_id: str
    name: str
    data_row_ids: list[str]
    priority: int


@dataclass
class ProjectState:
    project_id: str
    name: str
    classes: list[str]
    labelled: set[str] = field(default_factory=set)
    """Data rows with a submitted label: MAL rows on them fail."""
    prelabelled: set[str] = field(default_factory=set)
    batches: dict[str, BatchState] = field(default_factory=dict)
    """By batch id."""

    @property
    def data_rows(self) -> set[str]:
        return {r for b in self.batches.values() for r in b.data_row_ids}


@dataclass
class MalImportState:
    import_id: str
    project_id: str
    name: str
    rows: list[dict[str, Any]]
    statuses: list[dict[str, Any]]
    polls_left: int

    @property
    def state(self) -> str:
        return "RUNNING" if self.polls_left > 0 else "FINISHED"


@dataclass
class TaskState:
    task_id: str
    polls_left: int
    kind: str


class FakeProjects:
    """Projects, MAL imports, batches and tasks of one ``FakeLabelbox``."""

    def __init__(self, fake: FakeLabelbox) -> None:
        self.fake = fake
        self.projects: dict[str, ProjectState] = {}
        self.mal_imports: dict[str, MalImportState] = {}
        self.tasks: dict[str, TaskState] = {}
        self.task_polls = 1
        """How many look-ups answer IN_PROGRESS before an async batch task is COMPLETE."""
        self.registered: dict[str, list[str]] = {}
        """Model run id -> data rows added with ``upsert_data_rows``."""

    def add_project(
        self,
        project_id: str,
        *,
        classes: list[str],
        labelled: set[str] | None = None,
        data_rows: list[str] | None = None,
    ) -> ProjectState:
        """A project whose ontology has ``classes``; ``data_rows`` are in it already (a batch
        named ``existing``), ``labelled`` of them have a submitted label."""
        with self.fake.lock:
            state = ProjectState(project_id, f"project {project_id}", list(classes))
            state.labelled |= labelled or set()
            if data_rows:
                state.batches["batch-existing"] = BatchState(
                    "batch-existing", "existing", list(data_rows), 5
                )
            self.projects[project_id] = state
            ontology_id = f"ontology-project-{project_id}"
            self.fake.ontologies[ontology_id] = {
                "tools": [
                    {
                        "tool": "rectangle",
                        "name": name,
                        "featureSchemaId": f"fs-{name}",
                        "schemaNodeId": f"sn-{name}",
                        "color": "#00ff00",
                        "required": False,
                        "classifications": [],
                    }
                    for name in classes
                ],
                "classifications": [],
            }
            return state

    def project(self, project_id: str) -> ProjectState:
        with self.fake.lock:
            state = self.projects.get(project_id)
            if state is None:
                raise _GraphQLError(f"project {project_id} not found", "RESOURCE_NOT_FOUND")
            return state

    def imports_for(self, project_id: str) -> list[MalImportState]:
        with self.fake.lock:
            return [i for i in self.mal_imports.values() if i.project_id == project_id]

    def prelabels(self, project_id: str) -> list[dict[str, Any]]:
        return [row for imp in self.imports_for(project_id) for row in imp.rows]

    def batches(self, project_id: str) -> list[BatchState]:
        with self.fake.lock:
            return list(self.project(project_id).batches.values())

    # ------------------------------------------------------------------ nodes
    def project_node(self, p: ProjectState) -> dict[str, Any]:
        return {
            "id": p.project_id,
            "name": p.name,
            "description": "",
            "createdAt": _NOW,
            "updatedAt": _NOW,
            "lastActivityTime": _NOW,
            "setupComplete": _NOW,
            "autoAuditNumberOfLabels": 1,
            "autoAuditPercentage": 1.0,
            "dataRowCount": len(p.data_rows),
            "editorTaskType": None,
            "isBenchmarkEnabled": False,
            "isConsensusEnabled": False,
            "allowedMediaType": "IMAGE",
            "modelSetupComplete": False,
            "uploadType": "Manual",
        }

    def mal_node(self, imp: MalImportState) -> dict[str, Any]:
        base = f"{self.fake.base_url}/files/mal/{imp.import_id}"
        return {
            "id": imp.import_id,
            "name": imp.name,
            "state": imp.state,
            "progress": "100%" if imp.state != "RUNNING" else "0%",
            "inputFileUrl": f"{base}/input",
            "errorFileUrl": f"{base}/errors",
            "statusFileUrl": f"{base}/status",
            "project": self.project_node(self.projects[imp.project_id]),
        }

    @staticmethod
    def batch_node(b: BatchState) -> dict[str, Any]:
        return {
            "id": b.batch_id,
            "name": b.name,
            "size": len(b.data_row_ids),
            "createdAt": _NOW,
            "updatedAt": _NOW,
            "consensusSettingsJson": None,
        }

    # ------------------------------------------------------------------ MAL imports
    def create_mal_import(self, variables: dict[str, Any], payload: bytes) -> dict[str, Any]:
        with self.fake.lock:
            p = self.project(variables["projectId"])
            name = variables["name"]
            if any(
                i.project_id == p.project_id and i.name == name for i in self.mal_imports.values()
            ):
                raise _GraphQLError(f"import named {name} already exists", "RESOURCE_CONFLICT")
            rows = [json.loads(line) for line in payload.splitlines() if line.strip()]
            if not rows:
                raise _GraphQLError("empty import", "MALFORMED_REQUEST")
            statuses = [self._mal_status(p, row) for row in rows]
            accepted = [r for r, s in zip(rows, statuses, strict=True) if s["status"] == "SUCCESS"]
            p.prelabelled |= {r["dataRow"]["id"] for r in accepted}
            imp = MalImportState(
                import_id=f"mal-{uuidlib.uuid4().hex[:12]}",
                project_id=p.project_id,
                name=name,
                rows=accepted,
                statuses=statuses,
                polls_left=self.fake.import_polls,
            )
            self.mal_imports[imp.import_id] = imp
            return {"createModelAssistedLabelingPredictionImport": self.mal_node(imp)}

    def _mal_status(self, p: ProjectState, row: dict[str, Any]) -> dict[str, Any]:
        data_row_id = row.get("dataRow", {}).get("id")
        errors = []
        if data_row_id not in p.data_rows:
            errors.append(
                {"name": "DataRowNotInProject", "message": f"data row {data_row_id} not in project"}
            )
        if data_row_id in p.labelled:
            errors.append({"name": "DataRowAlreadyLabeled", "message": "data row has a label"})
        if row.get("name") not in p.classes:
            errors.append(
                {"name": "FeatureNotFound", "message": f"no feature named {row.get('name')}"}
            )
        if "confidence" in row:
            errors.append({"name": "InvalidField", "message": "confidence is not accepted for MAL"})
        return {
            "uuid": row.get("uuid"),
            "dataRow": {"id": data_row_id},
            "status": "FAILURE" if errors else "SUCCESS",
            **({"errors": errors} if errors else {}),
        }

    def find_mal_import(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        for imp in self.mal_imports.values():
            if imp.project_id == v["projectId"] and imp.name == v["name"]:
                node = self.mal_node(imp)
                if imp.polls_left > 0:
                    imp.polls_left -= 1
                return {"modelAssistedLabelingPredictionImport": node}
        raise _GraphQLError("import not found", "RESOURCE_NOT_FOUND")

    def file(self, parts: list[str]) -> bytes | None:
        if parts[:2] != ["files", "mal"] or len(parts) != 4:
            return None
        return import_file(self.mal_imports.get(parts[2]), parts[3])

    # ------------------------------------------------------------------ projects and batches
    def get_project(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        return {"project": self.project_node(self.project(str(v["param_0"])))}

    def project_ontology(self, q: str, v: dict[str, Any]) -> dict[str, Any]:
        p = self.project(str(v["param_0"]))
        answer = self.fake._ontology(q, {"param_0": f"ontology-project-{p.project_id}"})
        return {"project": {"ontology": answer["ontology"]}}

    def all_processed(self, _q: str, _v: dict[str, Any]) -> dict[str, Any]:
        return {"queryAllDataRowsHaveBeenProcessed": {"allDataRowsHaveBeenProcessed": True}}

    def _new_batch(self, p: ProjectState, name: str, ids: list[str], priority: int) -> BatchState:
        if any(b.name == name for b in p.batches.values()):
            raise _GraphQLError(f"a batch named {name} already exists", "RESOURCE_CONFLICT")
        if len(ids) > MAX_BATCH_ROWS:
            raise _GraphQLError("batch exceeds 100,000 data rows", "MALFORMED_REQUEST")
        if not 1 <= priority <= 5:
            raise _GraphQLError("priority must be 1 to 5", "MALFORMED_REQUEST")
        batch = BatchState(f"batch-{uuidlib.uuid4().hex[:12]}", name, list(ids), priority)
        p.batches[batch.batch_id] = batch
        return batch

    def create_batch_sync(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        p = self.project(v["projectId"])
        spec = v["batchInput"]
        ids, failed = _new_rows(p, spec.get("dataRowIds") or [])
        batch = self._new_batch(p, spec["name"], ids, spec["priority"])
        return {
            "project": {
                "createBatchV2": {"batch": self.batch_node(batch), "failedDataRowIds": failed}
            }
        }

    def create_empty_batch(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        p = self.project(v["projectId"])
        batch = self._new_batch(p, v["input"]["name"], [], 5)
        return {"project": {"createEmptyBatch": {"id": batch.batch_id}}}

    def add_rows_to_batch(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        p = self.project(v["projectId"])
        spec = v["input"]
        batch = p.batches[spec["batchId"]]
        batch.data_row_ids.extend(_new_rows(p, spec.get("dataRowIds") or [])[0])
        batch.priority = int(spec["priority"])
        task = TaskState(f"task-batch-{uuidlib.uuid4().hex[:12]}", self.task_polls, "batch")
        self.tasks[task.task_id] = task
        return {"project": {"addDataRowsToBatchAsync": {"taskId": task.task_id}}}

    def get_batch(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        p = self.project(v["projectId"])
        batch = p.batches.get(v["batchId"])
        if batch is None:
            raise _GraphQLError("batch not found", "RESOURCE_NOT_FOUND")
        return {"project": {"batches": {"nodes": [self.batch_node(batch)]}}}

    def list_batches(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        p = self.project(v["projectId"])
        nodes = [self.batch_node(b) for b in p.batches.values()]
        start = int(v.get("from") or 0)
        first = int(v.get("first") or 100)
        page = nodes[start : start + first]
        end = start + len(page)
        cursor = str(end) if end < len(nodes) else None
        return {
            "project": {
                "id": p.project_id,
                "batches": {"nodes": page, "pageInfo": {"endCursor": cursor}},
            }
        }

    def task_node(self, task_id: str) -> dict[str, Any] | None:
        task = self.tasks.get(task_id)
        if task is None:
            return None
        if task.polls_left > 0:
            task.polls_left -= 1
            status = "IN_PROGRESS"
        else:
            status = "COMPLETE"
        return {
            "id": task.task_id,
            "name": task.kind,
            "status": status,
            "type": task.kind,
            "completionPercentage": 100.0 if status == "COMPLETE" else 50.0,
            "createdAt": _NOW,
            "updatedAt": _NOW,
            "metadata": {},
            "result": None,
            "errors": None,
        }

    # ------------------------------------------------------------------ model run membership
    def register_data_rows(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        mr = self.fake.model_runs.get(v["modelRunId"])
        if mr is None:
            raise _GraphQLError("model run not found", "RESOURCE_NOT_FOUND")
        ids = list(v.get("dataRowIds") or [])
        self.registered.setdefault(mr.model_run_id, []).extend(ids)
        known = self.fake._known_rows(mr)
        for data_row_id in ids:
            if data_row_id not in known:
                mr.data_splits[data_row_id] = "UNASSIGNED"
        if not mr.data_splits:
            mr.data_splits.update({r: "UNASSIGNED" for r in known})
        task = TaskState(f"task-register-{uuidlib.uuid4().hex[:12]}", 0, "register")
        self.tasks[task.task_id] = task
        return {"createMEAModelRunDataRowRegistrationTask": task.task_id}

    def registration_status(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        if v["where"]["id"] not in self.tasks:
            raise _GraphQLError("task not found", "RESOURCE_NOT_FOUND")
        return {"MEADataRowRegistrationTaskStatus": {"status": "COMPLETE", "errorMessage": None}}

    def assign_split(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        mr = self.fake.model_runs.get(v["modelRunId"])
        if mr is None:
            raise _GraphQLError("model run not found", "RESOURCE_NOT_FOUND")
        for assignment in v["data"]["assignments"]:
            if assignment["split"] not in {"TRAINING", "VALIDATION", "TEST", "UNASSIGNED"}:
                raise _GraphQLError("unknown split", "MALFORMED_REQUEST")
            for data_row_id in assignment.get("dataRowIds") or []:
                mr.data_splits[data_row_id] = assignment["split"]
        task = TaskState(f"task-split-{uuidlib.uuid4().hex[:12]}", 0, "split")
        self.tasks[task.task_id] = task
        return {"createAssignDataRowsToDataSplitTask": task.task_id}

    def split_task_status(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        if v["id"] not in self.tasks:
            raise _GraphQLError("task not found", "RESOURCE_NOT_FOUND")
        return {"assignDataRowsToDataSplitTaskStatus": {"status": "COMPLETE", "errorMessage": None}}


def _new_rows(p: ProjectState, ids: list[str]) -> tuple[list[str], list[str]]:
    """``ids`` split into rows that may join a batch and rows Labelbox refuses: a data row is in
    at most one batch of a project."""
    present = p.data_rows
    return [i for i in ids if i not in present], [i for i in ids if i in present]


Handler = Callable[[FakeProjects, str, dict[str, Any]], dict[str, Any]]

OPERATIONS: dict[str, Handler] = {
    "GetProjectPyApi": FakeProjects.get_project,
    "GetProjectOntologyPyApi": FakeProjects.project_ontology,
    "getModelAssistedLabelingPredictionImportPyApi": FakeProjects.find_mal_import,
    "CheckAllDataRowsHaveBeenProcessedPyApi": FakeProjects.all_processed,
    "createBatchV2PyApi": FakeProjects.create_batch_sync,
    "createEmptyBatchPyApi": FakeProjects.create_empty_batch,
    "addDataRowsToBatchAsyncPyApi": FakeProjects.add_rows_to_batch,
    "getProjectBatchPyApi": FakeProjects.get_batch,
    "GetProjectBatchesPyApi": FakeProjects.list_batches,
    "createMEAModelRunDataRowRegistrationTaskPyApi": FakeProjects.register_data_rows,
    "MEADataRowRegistrationTaskStatusPyApi": FakeProjects.registration_status,
    "assignDataSplitPyApi": FakeProjects.assign_split,
    "assignDataRowsToDataSplitTaskStatusPyApi": FakeProjects.split_task_status,
}
EXPERIMENTAL_OPERATIONS = frozenset(
    {
        "createBatchV2PyApi",
        "createEmptyBatchPyApi",
        "addDataRowsToBatchAsyncPyApi",
        "GetProjectBatchesPyApi",
        "assignDataSplitPyApi",
        "assignDataRowsToDataSplitTaskStatusPyApi",
    }
)
"""Sent with ``experimental=True``: the SDK posts them to ``/_gql``."""
FILE_OPERATIONS = {"createMALPredictionImportByFilePyApi": FakeProjects.create_mal_import}
