"""The catalog side of the fake Labelbox: datasets and their data rows (row data, media
attributes), each row's labels in the projects it is in, and the exports of unlabelled rows a
pool reads: ``exportDataRowsInProjectPyApi`` (``project.export``) and
``exportDataRowsInCatalogPyApi`` (``dataset.export`` / ``DataRow.export``: search filters
``dataset``, ``global_key``, ``data_row_id``; params ``projectIds``, ``includeProjectDetails``,
``includeLabelDetails``), plus ``GetDatasetPyApi`` (``client.get_dataset``).

Names and shapes as the labelbox SDK 7.17 sends them (``schema/project.py`` ``_export``,
``schema/dataset.py`` ``_export``, ``schema/data_row.py`` ``_export``,
``schema/export_filters.py`` ``build_filters``). An export is written to a file when the task
is created and served like a model run's (``FakeLabelbox.new_export_task``), in an order that
is not the data row id order (as Labelbox's is not). Like the real service, an unknown project
or dataset is ``RESOURCE_NOT_FOUND`` and more than 2,000 ids in one filter are refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes.labelbox_server import _NOW, _GraphQLError

if TYPE_CHECKING:
    from tests.fakes.labelbox_projects import ProjectState
    from tests.fakes.labelbox_server import FakeLabelbox

MAX_IDS_PER_FILTER = 2_000
FILTER_TYPES = frozenset({"dataset", "global_key", "data_row_id"})


@dataclass
class CatalogRow:
    data_row_id: str
    global_key: str | None
    row_data: str
    dataset_id: str
    media_attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class DatasetState:
    dataset_id: str
    name: str
    row_ids: list[str] = field(default_factory=list)


class FakeCatalog:
    """Datasets and data rows of one ``FakeLabelbox``; project membership and labels come from
    ``FakeLabelbox.projects``."""

    def __init__(self, fake: FakeLabelbox) -> None:
        self.fake = fake
        self.datasets: dict[str, DatasetState] = {}
        self.rows: dict[str, CatalogRow] = {}
        self._exports = 0

    def add_dataset(self, dataset_id: str, rows: Iterable[dict[str, Any]]) -> DatasetState:
        """A dataset of ``rows``: dicts with ``id``, ``row_data`` and optionally
        ``global_key``, ``width``, ``height``, ``mime_type``."""
        with self.fake.lock:
            state = DatasetState(dataset_id, f"dataset {dataset_id}")
            for row in rows:
                media = {
                    k: row[k] for k in ("width", "height", "mime_type") if row.get(k) is not None
                }
                self.rows[row["id"]] = CatalogRow(
                    row["id"], row.get("global_key"), row["row_data"], dataset_id, media
                )
                state.row_ids.append(row["id"])
            self.datasets[dataset_id] = state
            return state

    # ------------------------------------------------------------------ operations
    def get_dataset(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        state = self.datasets.get(str(v.get("param_0")))
        if state is None:
            return {"dataset": None}  # the SDK raises ResourceNotFoundError
        return {
            "dataset": {
                "id": state.dataset_id,
                "name": state.name,
                "description": "",
                "updatedAt": _NOW,
                "createdAt": _NOW,
                "rowCount": len(state.row_ids),
            }
        }

    def export_project(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        spec = v["input"]
        project = self.fake.projects.project(spec["filters"]["projectId"])
        wanted = self._search(spec["filters"]["searchQuery"]["query"] or [])
        ids = [r for r in sorted(project.data_rows) if wanted is None or r in wanted]
        params = spec["params"]
        batches = _batch_of([project])
        rows = (
            self._export_row(r, [project], batches, params, sections_for_all=True)
            for r in self._in_export_order(ids)
        )
        return {"exportDataRowsInProject": self._task(rows, spec)}

    def export_catalog(self, _q: str, v: dict[str, Any]) -> dict[str, Any]:
        spec = v["input"]
        wanted = self._search(spec["filters"]["searchQuery"]["query"] or [])
        if wanted is None:
            raise _GraphQLError("a catalog export needs a search filter", "MALFORMED_REQUEST")
        params = spec["params"]
        projects = self._projects(params)
        batches = _batch_of(projects)
        rows = (
            self._export_row(r, projects, batches, params, sections_for_all=False)
            for r in self._in_export_order(sorted(wanted))
        )
        return {"exportDataRowsInCatalog": self._task(rows, spec)}

    # ------------------------------------------------------------------ helpers
    def _search(self, query: list[dict[str, Any]]) -> set[str] | None:
        """The data rows every filter of ``query`` matches (None: no filter)."""
        wanted: set[str] | None = None
        for clause in query:
            kind = clause.get("type")
            if kind not in FILTER_TYPES:
                raise _GraphQLError(f"fake Labelbox: no {kind} search filter", "MALFORMED_REQUEST")
            ids = list(clause.get("ids") or [])
            if not ids or len(ids) > MAX_IDS_PER_FILTER:
                raise _GraphQLError(
                    f"{kind} filter takes 1 to {MAX_IDS_PER_FILTER} ids", "MALFORMED_REQUEST"
                )
            if kind == "dataset":
                matched: set[str] = set()
                for dataset_id in ids:
                    state = self.datasets.get(dataset_id)
                    if state is None:
                        raise _GraphQLError(f"dataset {dataset_id} not found", "RESOURCE_NOT_FOUND")
                    matched.update(state.row_ids)
            elif kind == "global_key":
                keys = set(ids)
                matched = {r.data_row_id for r in self.rows.values() if r.global_key in keys}
            else:
                matched = set(ids) & set(self.rows)
            wanted = matched if wanted is None else wanted & matched
        return wanted

    def _projects(self, params: dict[str, Any]) -> list[ProjectState]:
        if params.get("allProjects"):
            return list(self.fake.projects.projects.values())
        return [self.fake.projects.project(p) for p in params.get("projectIds") or []]

    @staticmethod
    def _in_export_order(ids: list[str]) -> list[str]:
        return sorted(ids, key=lambda r: hashlib.sha256(r.encode()).hexdigest())

    def _export_row(
        self,
        data_row_id: str,
        projects: list[ProjectState],
        batches: dict[tuple[str, str], str],
        params: dict[str, Any],
        *,
        sections_for_all: bool,
    ) -> dict[str, Any]:
        row = self.rows.get(data_row_id)
        if row is None:
            raise AssertionError(f"test set-up: data row {data_row_id} is in no fake dataset")
        data_row: dict[str, Any] = {"id": row.data_row_id, "row_data": row.row_data}
        if row.global_key is not None:
            data_row["global_key"] = row.global_key
        if params.get("includeDataRowDetails"):
            data_row["details"] = {"dataset_id": row.dataset_id, "created_at": _NOW,
                                   "updated_at": _NOW, "last_activity_at": _NOW}  # fmt: skip
        out: dict[str, Any] = {"data_row": data_row, "media_attributes": dict(row.media_attributes)}
        sections = {}
        for project in projects:
            batch_id = batches.get((project.project_id, data_row_id))
            if batch_id is None:
                continue
            labelled = data_row_id in project.labelled
            if not (sections_for_all or params.get("includeProjectDetails") or labelled):
                continue
            section: dict[str, Any] = {
                "name": project.name,
                "labels": [self._label(project, data_row_id, params)] if labelled else [],
            }
            if params.get("includeProjectDetails"):
                section["project_details"] = {
                    "batch_id": batch_id,
                    "workflow_status": "DONE" if labelled else "TO_LABEL",
                    "priority": 5,
                    "created_at": _NOW,
                    "updated_at": _NOW,
                }
            sections[project.project_id] = section
        if sections or params.get("projectIds") or sections_for_all:
            out["projects"] = sections
        return out

    @staticmethod
    def _label(project: ProjectState, data_row_id: str, params: dict[str, Any]) -> dict[str, Any]:
        name = project.classes[0] if project.classes else "object"
        label: dict[str, Any] = {
            "id": f"label-{project.project_id}-{data_row_id}",
            "annotations": {
                "objects": [
                    {
                        "feature_id": f"feature-{data_row_id}",
                        "feature_schema_id": f"fs-{name}",
                        "name": name,
                        "annotation_kind": "ImageBoundingBox",
                        "classifications": [],
                        "bounding_box": {"top": 4.0, "left": 4.0, "height": 10.0, "width": 10.0},
                    }
                ],
                "classifications": [],
                "relationships": [],
            },
        }
        if params.get("includeLabelDetails"):
            label["label_details"] = {"created_at": _NOW, "updated_at": _NOW,
                                      "created_by": "user@example.invalid"}  # fmt: skip
        return label

    def _task(self, rows: Iterable[dict[str, Any]], spec: dict[str, Any]) -> dict[str, Any]:
        self._exports += 1
        path = self.fake.workdir / f"catalog-export-{self._exports}.ndjson"
        count = 0
        with path.open("wb") as out:
            for row in rows:
                out.write(json.dumps(row, separators=(",", ":")).encode() + b"\n")
                count += 1
        task = self.fake.new_export_task(path if count else None, None, spec)
        return {"taskId": task.task_id, "isStreamable": True}


def _batch_of(projects: list[ProjectState]) -> dict[tuple[str, str], str]:
    """(project id, data row id) -> the id of the batch that put the row in the project."""
    return {
        (p.project_id, row): b.batch_id
        for p in projects
        for b in p.batches.values()
        for row in b.data_row_ids
    }


Handler = Callable[[FakeCatalog, str, dict[str, Any]], dict[str, Any]]

CATALOG_OPERATIONS: dict[str, Handler] = {
    "GetDatasetPyApi": FakeCatalog.get_dataset,
    "exportDataRowsInProjectPyApi": FakeCatalog.export_project,
    "exportDataRowsInCatalogPyApi": FakeCatalog.export_catalog,
}
