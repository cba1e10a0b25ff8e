"""A Labelbox pool as an export file: the rows of a project without a label, of a dataset (with
a project: those not yet in it), or of a list of global keys, exported with the SDK and written
as the pool export that ``vmt.pool`` reads (rows without a split are fine there).

SDK calls (labelbox 7.17), each through ``LabelboxWorkspace.call``:

- project: ``client.get_project(P)`` (``GetProjectPyApi``), ``project.export(params=...)``
  (``exportDataRowsInProjectPyApi``); a row is kept when ``projects.<P>.labels`` is empty;
- dataset: ``client.get_dataset(D)`` (``GetDatasetPyApi``), ``dataset.export(params=...)``
  (``exportDataRowsInCatalogPyApi`` with a dataset filter; with a project P,
  ``project_details`` and ``project_ids=[P]``); with P a row is kept when it has no
  ``projects.<P>`` section (it is not in P);
- global keys: ``DataRow.export(client, global_keys=..., params=...)``
  (``exportDataRowsInCatalogPyApi`` with a ``global_key`` filter), one task per
  ``KEYS_PER_EXPORT`` keys (the SDK's limit per filter); keys that match no row are reported
  (count and the first few) and the rest go on;

then ``export_stream`` waits for each task and streams its rows.

Determinism: each kept row is cut to what a pool reads (``pool_inputs.pool_row``) and held in a
throw-away SQLite table keyed by data row id (on disk beside the file, so memory stays flat for a
1M-row pool); the file is then written in data row id order. An unchanged Labelbox pool thus
gives the same bytes, and the pool predictions kept under the file's digest are reused.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import orjson

from vmt.backends.labelbox import export_stream
from vmt.backends.labelbox.export_stream import ExportWatcher
from vmt.backends.labelbox.project import LabelboxWorkspace
from vmt.config import Settings
from vmt.durable_files import atomic_writer
from vmt.errors import InputError
from vmt.pool.pool_inputs import has_label_in, pool_row, project_section
from vmt.pool.pool_spec import PoolKind, PoolSpec, read_global_keys

T = TypeVar("T")

EXPORTS_DIR = Path("pools") / "exports"
"""Where exported pools go, under a run folder (``--run``) or else the state dir."""
KEYS_PER_EXPORT = 2_000
"""Global keys per export task: the SDK's ``SEARCH_LIMIT_PER_EXPORT_V2``."""
UNKNOWN_KEY_EXAMPLES = 5
_EXPORT_PARAMS: dict[str, Any] = {
    "attachments": False,
    "embeddings": False,
    "metadata_fields": False,
    "data_row_details": False,
    "performance_details": False,
    "interpolated_frames": False,
}


@dataclass
class PoolExport:
    """What exporting a Labelbox pool wrote and left out."""

    spec: PoolSpec
    path: Path
    rows: int = 0
    """Rows written to ``path``."""
    exported: int = 0
    """Distinct rows Labelbox exported."""
    labelled: int = 0
    """Project pool: rows left out because they have a label in the project."""
    in_project: int = 0
    """Dataset pool with a project: rows left out because they are in it already."""
    keys: int = 0
    unknown_keys: int = 0
    unknown_key_examples: list[str] = field(default_factory=list)
    unreadable: int = 0
    """Exported lines without a data row id (left out; none are expected)."""
    tasks: int = 0
    errors: int = 0
    """Errors Labelbox reported on the export tasks (kept beside the file)."""

    def summary(self) -> str:
        """One line: rows written, what was left out and why."""
        parts = [f"{self.rows} rows of {self.spec} exported from Labelbox -> {self.path}"]
        if self.labelled:
            parts.append(f"{self.labelled} labelled rows left out")
        if self.in_project:
            parts.append(f"{self.in_project} rows already in the project left out")
        if self.unknown_keys:
            shown = ", ".join(self.unknown_key_examples)
            more = ", ..." if self.unknown_keys > len(self.unknown_key_examples) else ""
            parts.append(
                f"{self.unknown_keys} of {self.keys} global keys match no data row ({shown}{more})"
            )
        if self.unreadable:
            parts.append(f"{self.unreadable} exported lines without a data row id left out")
        if self.errors:
            parts.append(f"{self.errors} export errors (kept beside the file: *.errors-*.ndjson)")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": str(self.spec),
            "path": str(self.path),
            "rows": self.rows,
            "exported": self.exported,
            "labelled_left_out": self.labelled,
            "in_project_left_out": self.in_project,
            "unknown_global_keys": self.unknown_keys,
            "unknown_global_key_examples": list(self.unknown_key_examples),
            "unreadable_rows": self.unreadable,
            "export_tasks": self.tasks,
            "export_errors": self.errors,
        }


def exports_folder(base: Path) -> Path:
    """The folder exported pools go to under ``base`` (a run folder, or the state dir)."""
    return base / EXPORTS_DIR


def resolve_pool(
    spec: PoolSpec,
    *,
    settings: Settings,
    base: Path,
    project_id: str | None,
    watcher: ExportWatcher,
) -> tuple[Path, PoolExport | None]:
    """The export file of the pool ``spec``: the file itself, or a Labelbox pool exported now to
    ``exports_folder(base)`` (with what the export did)."""
    if not spec.is_labelbox:
        return spec.path, None
    export = export_pool(
        spec,
        workspace=LabelboxWorkspace(settings),
        folder=exports_folder(base),
        project_id=project_id,
        watcher=watcher,
    )
    return export.path, export


def export_pool(
    spec: PoolSpec,
    *,
    workspace: LabelboxWorkspace,
    folder: Path,
    project_id: str | None,
    watcher: ExportWatcher,
) -> PoolExport:
    """Export the Labelbox pool ``spec`` to ``folder/<name>.ndjson`` (see the module doc).

    ``project_id``: for a dataset pool, leave out the rows already in that project; for a
    global-keys pool, export that project's labels with the rows (so pre-labelling leaves the
    labelled ones alone). Raises ``InputError`` for a ``FILE`` spec, a missing keys file or a
    pool with no row left; ``NotFoundError`` for an unknown project or dataset."""
    if not spec.is_labelbox:
        raise InputError(f"{spec} is a file, not a Labelbox pool")
    keys = read_global_keys(spec.path) if spec.kind is PoolKind.GLOBAL_KEYS else []
    folder.mkdir(parents=True, exist_ok=True)
    name = _file_name(spec, project_id, keys)
    result = PoolExport(spec, folder / f"{name}.ndjson", keys=len(keys))
    db_path = folder / f".{name}.{uuid.uuid4().hex[:12]}.sorting.sqlite"  # one per export
    db = sqlite3.connect(db_path)
    try:
        db.execute("PRAGMA journal_mode=OFF")  # a throw-away table: nothing to recover
        db.execute("PRAGMA synchronous=OFF")
        db.execute(
            "CREATE TABLE rows (id TEXT PRIMARY KEY, global_key TEXT, left_out TEXT, line BLOB)"
        )
        db.execute("CREATE INDEX rows_by_key ON rows (global_key)")
        export = _PoolExporter(spec, workspace, folder, name, project_id, watcher, db, result)
        export.run(keys)
        _write_sorted(db, result)
    finally:
        db.close()
        db_path.unlink(missing_ok=True)
    watcher.event("labelbox pool exported", **result.to_json())
    if result.rows == 0:
        raise InputError(f"pool {spec} has no row to predict on: {result.summary()}")
    return result


class _PoolExporter:
    def __init__(
        self,
        spec: PoolSpec,
        workspace: LabelboxWorkspace,
        folder: Path,
        name: str,
        project_id: str | None,
        watcher: ExportWatcher,
        db: sqlite3.Connection,
        result: PoolExport,
    ) -> None:
        self.spec = spec
        self.workspace = workspace
        self.folder = folder
        self.name = name
        self.project_id = project_id
        self.watcher = watcher
        self.db = db
        self.result = result
        subject = {
            PoolKind.LABELBOX_PROJECT: f"project {spec.value}",
            PoolKind.LABELBOX_DATASET: f"dataset {spec.value}",
        }.get(spec.kind, "the workspace")
        self.subject = subject

    def call(self, fn: Callable[[], T], what: str) -> T:
        return self.workspace.call(fn, what, subject=self.subject)

    def run(self, keys: list[str]) -> None:
        client = self.workspace.client
        task_name = f"vmt-pool-{self.name}"
        if self.spec.kind is PoolKind.LABELBOX_PROJECT:
            project = self.call(lambda: client.get_project(self.spec.value), "project look-up")
            params = {**_EXPORT_PARAMS, "project_details": False, "label_details": False}
            self._export(lambda: project.export(task_name=task_name, params=params), 0)
        elif self.spec.kind is PoolKind.LABELBOX_DATASET:
            dataset = self.call(lambda: client.get_dataset(self.spec.value), "dataset look-up")
            params = self._catalog_params()
            self._export(lambda: dataset.export(task_name=task_name, params=params), 0)
        else:
            self._export_keys(client, task_name, keys)

    def _catalog_params(self) -> dict[str, Any]:
        if self.project_id is None:
            return {**_EXPORT_PARAMS, "project_details": False, "label_details": False}
        return {
            **_EXPORT_PARAMS,
            "project_details": True,
            "label_details": False,
            "project_ids": [self.project_id],
        }

    def _export_keys(self, client: Any, task_name: str, keys: list[str]) -> None:
        from labelbox import DataRow

        params = self._catalog_params()
        for index, start in enumerate(range(0, len(keys), KEYS_PER_EXPORT)):
            chunk = keys[start : start + KEYS_PER_EXPORT]
            start_task = partial(
                DataRow.export,
                client,
                global_keys=chunk,
                task_name=f"{task_name}-{index}",
                params=params,
            )
            self._export(start_task, index)
            found = self._found_keys(chunk)
            missing = [key for key in chunk if key not in found]
            self.result.unknown_keys += len(missing)
            room = UNKNOWN_KEY_EXAMPLES - len(self.result.unknown_key_examples)
            self.result.unknown_key_examples.extend(missing[: max(room, 0)])
        if self.result.unknown_keys:
            self.watcher.event(
                "global keys that match no Labelbox data row were left out",
                count=self.result.unknown_keys,
                examples=self.result.unknown_key_examples,
            )

    def _found_keys(self, chunk: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(chunk), 500):  # under SQLite's limit on bound parameters
            part = chunk[start : start + 500]
            marks = ",".join("?" * len(part))
            query = f"SELECT global_key FROM rows WHERE global_key IN ({marks})"
            found.update(key for (key,) in self.db.execute(query, part))
        return found

    def _export(self, start: Callable[[], Any], index: int) -> None:
        task = self.call(start, "pool export start")
        self.result.tasks += 1
        self.watcher.event(
            "labelbox pool export task started", task_id=str(task.uid), pool=str(self.spec)
        )
        task = export_stream.wait_until_done(
            task,
            client=self.workspace.client,
            call=self.call,
            watcher=self.watcher,
            settings=self.workspace.settings,
            describe=f"pool {self.spec}",
        )
        errors_path = self.folder / f"{self.name}.errors-{index}.ndjson"
        self.result.errors += export_stream.save_errors(
            task, call=self.call, watcher=self.watcher, path=errors_path
        )
        total = export_stream.total_rows(task, self.call)
        self.call(lambda: self._load(task, total), "pool export download")

    def _load(self, task: Any, total: int | None) -> None:
        """Every exported row into the table (again after a retried download: rows are
        replaced by id, so nothing is counted twice)."""
        batch: list[tuple[str, str | None, str | None, bytes | None]] = []
        unreadable = 0
        for row in export_stream.result_rows(
            task, watcher=self.watcher, total=total, what="pool rows exported"
        ):
            data_row = row.get("data_row") if isinstance(row, dict) else None
            if not isinstance(data_row, dict) or not isinstance(data_row.get("id"), str):
                unreadable += 1  # not a data row: nothing a pool could predict on
                continue
            key = data_row.get("global_key")
            left_out = self._left_out(row)
            line = (
                None
                if left_out
                else orjson.dumps(pool_row(row, self._kept_project()), option=orjson.OPT_SORT_KEYS)
            )
            batch.append((data_row["id"], key if isinstance(key, str) else None, left_out, line))
            if len(batch) >= export_stream.PROGRESS_EVERY:
                self._insert(batch)
        self._insert(batch)
        self.result.unreadable += unreadable

    def _kept_project(self) -> str | None:
        if self.spec.kind is PoolKind.LABELBOX_PROJECT:
            return self.spec.value
        return self.project_id

    def _left_out(self, row: dict[str, Any]) -> str | None:
        """Why a row is not in the pool (``labelled``, ``in_project``), or None."""
        if self.spec.kind is PoolKind.LABELBOX_PROJECT:
            return "labelled" if has_label_in(row, self.spec.value) else None
        if self.spec.kind is PoolKind.LABELBOX_DATASET and self.project_id is not None:
            return "in_project" if project_section(row, self.project_id) is not None else None
        return None

    def _insert(self, batch: list[tuple[str, str | None, str | None, bytes | None]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?)", batch)
        self.db.commit()
        batch.clear()


def _write_sorted(db: sqlite3.Connection, result: PoolExport) -> None:
    counts = dict(
        db.execute("SELECT coalesce(left_out, ''), count(*) FROM rows GROUP BY 1").fetchall()
    )
    result.exported = sum(counts.values())
    result.labelled = counts.get("labelled", 0)
    result.in_project = counts.get("in_project", 0)
    with atomic_writer(result.path) as out:
        for (line,) in db.execute("SELECT line FROM rows WHERE left_out IS NULL ORDER BY id"):
            out.write(line + b"\n")
            result.rows += 1


def _file_name(spec: PoolSpec, project_id: str | None, keys: list[str]) -> str:
    if spec.kind is PoolKind.GLOBAL_KEYS:
        name = f"global-keys-{hashlib.sha256(chr(10).join(sorted(keys)).encode()).hexdigest()[:12]}"
    else:
        name = f"{spec.kind.value}-{spec.value}"
    if project_id is not None and spec.kind is not PoolKind.LABELBOX_PROJECT:
        name += f"-project-{project_id}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:200]
