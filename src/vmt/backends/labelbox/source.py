"""``LabelboxSource``: export a model run to a local NDJSON file, in constant memory.

Flow: ``model_run.export(params)`` starts an export task whose id is recorded at once
(``labelbox.export_task``), so a restarted run re-attaches with ``ExportTask.get_task`` instead of
exporting again. The task is polled until COMPLETE, its errors stream is saved and recorded as
events, and the result stream is written row by row to ``dest`` (progress from the total line
count; the waiting and streaming are ``export_stream``'s, shared with pool exports). Rows whose
model-run split is missing get it from ``model_run.model_run_data_rows()`` (``dataSplit``),
held in a throw-away SQLite table, not in memory. Rows still without a split get
the run's ``unassigned`` policy (``vmt run --unassigned auto``) written into the export, and those
splits are written back to the model run (``splits.write_back_splits``) so that Labelbox shows the
splits the model was trained and evaluated on and a later run reuses them.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson

from vmt.backends.labelbox import export_stream
from vmt.backends.labelbox.connection import LabelboxConnection
from vmt.backends.labelbox.splits import write_back_splits
from vmt.config import Settings
from vmt.domain import Split
from vmt.errors import NotFoundError
from vmt.formats.export_options import split_for_unassigned
from vmt.pipeline.protocols import RunContext
from vmt.retry import Backoff

log = logging.getLogger("vmt")
T = TypeVar("T")

EXPORT_TASK_HANDLE = "labelbox.export_task"
EXPORT_PARAMS: dict[str, Any] = {
    "data_row_details": True,
    "model_run_details": True,
    "predictions": False,
    "attachments": False,
    "metadata_fields": False,
    "embeddings": False,
}
ERRORS_FILE = "labelbox_export_errors.ndjson"
_PROGRESS_EVERY = 1000


class LabelboxSource:
    """The rows of one Labelbox model run (implements ``vmt.pipeline.protocols.Source``)."""

    def __init__(
        self,
        settings: Settings,
        model_run_id: str,
        *,
        backoff: Backoff | None = None,
        connection: LabelboxConnection | None = None,
        unassigned: str = "skip",
    ) -> None:
        self.connection = connection or LabelboxConnection(settings, model_run_id, backoff=backoff)
        self.settings = settings
        self.model_run_id = model_run_id
        self.unassigned = unassigned

    def feature_schema_ids(self) -> dict[str, str]:
        """Class name -> feature schema id from the model's ontology."""
        return self.connection.feature_schema_ids()

    def locate_image(self, uri: str) -> str:
        return uri  # Labelbox row_data are URLs

    def export(self, ctx: RunContext, dest: Path) -> None:
        call = self._sdk_call(ctx)
        task = self._attach_or_start(ctx)
        export_stream.save_errors(task, call=call, watcher=ctx, path=ctx.workdir / ERRORS_FILE)
        total = export_stream.total_rows(task, call)
        # ``dest`` is the export stage's temporary file: the stage makes it durable and
        # renames it (``durable_files.atomic_path``) once this returns.
        missing = call(lambda: self._write_rows(ctx, task, dest, total), "export download")
        if missing:
            ctx.event("export rows carry no split: reading splits from the model run", rows=missing)
            without_splits = dest.with_name(dest.name + ".without-splits")
            dest.replace(without_splits)
            self._inject_splits(ctx, without_splits, dest)
            without_splits.unlink()
        ctx.event("labelbox export written", rows=total or 0, task_id=str(task.uid))

    # ------------------------------------------------------------------ the export task
    def _attach_or_start(self, ctx: RunContext) -> Any:
        call = self._sdk_call(ctx)
        client = self.connection.client
        task_id = ctx.get_handle(EXPORT_TASK_HANDLE)
        task: Any = None
        if task_id is not None:
            try:
                task = export_stream.get_task(client, task_id, call)
                ctx.event("re-attached to labelbox export task", task_id=task_id)
            except NotFoundError:
                ctx.event("labelbox export task is gone: exporting again", task_id=task_id)
                task = None
        if task is None:
            model_run = self.connection.model_run()
            task = call(
                lambda: model_run.export(task_name=f"vmt-{ctx.run_id}", params=EXPORT_PARAMS),
                "export start",
            )
            ctx.set_handle(EXPORT_TASK_HANDLE, str(task.uid))
            ctx.event("labelbox export task started", task_id=str(task.uid))
        return export_stream.wait_until_done(
            task,
            client=client,
            call=call,
            watcher=ctx,
            settings=self.settings,
            describe=f"model run {self.model_run_id}",
            run_id=ctx.run_id,
        )

    # ------------------------------------------------------------------ rows
    def _write_rows(self, ctx: RunContext, task: Any, path: Path, total: int | None) -> int:
        """Stream the result to ``path``; return how many rows carry no split for this run."""
        missing = 0
        with path.open("wb") as out:
            for row in export_stream.result_rows(
                task, watcher=ctx, total=total, what="rows exported"
            ):
                if not _has_split(row, self.model_run_id):
                    missing += 1
                out.write(orjson.dumps(row) + b"\n")
        return missing

    def _inject_splits(self, ctx: RunContext, source: Path, dest: Path) -> None:
        model_id = self.connection.model_run().model_id
        db_path = ctx.workdir / "labelbox_splits.sqlite"
        db = sqlite3.connect(db_path)
        try:
            self._sdk_call(ctx)(lambda: self._load_splits(ctx, db), "model run data rows")
            db.execute("CREATE TABLE assigned (id TEXT PRIMARY KEY, split TEXT NOT NULL)")
            with source.open("rb") as rows, dest.open("wb") as out:
                for line in rows:
                    row = orjson.loads(line)
                    if not _has_split(row, self.model_run_id):
                        data_row_id = _data_row_id(row)
                        found = db.execute(
                            "SELECT split FROM splits WHERE id = ?", (data_row_id,)
                        ).fetchone()
                        split = Split.parse(found[0] if found is not None else None)
                        if split is Split.UNASSIGNED and data_row_id is not None:
                            split = split_for_unassigned(self.unassigned, data_row_id)
                            if split is not Split.UNASSIGNED:
                                db.execute(
                                    "INSERT OR REPLACE INTO assigned VALUES (?, ?)",
                                    (data_row_id, split.value),
                                )
                        if found is not None or split is not Split.UNASSIGNED:
                            _set_split(row, model_id, self.model_run_id, split.value)
                    out.write(orjson.dumps(row) + b"\n")
            db.commit()
            self._write_back(ctx, db)
        finally:
            db.close()
            db_path.unlink(missing_ok=True)

    def _write_back(self, ctx: RunContext, db: sqlite3.Connection) -> None:
        """The splits this run gave rows (its ``unassigned`` policy) into the model run."""
        (count,) = db.execute("SELECT COUNT(*) FROM assigned").fetchone()
        if not count:
            return

        def rows_of(split: Split) -> Iterator[str]:
            query = "SELECT id FROM assigned WHERE split = ? ORDER BY id"
            for (data_row_id,) in db.execute(query, (split.value,)):
                yield data_row_id

        written = write_back_splits(self.connection, rows_of, run_id=ctx.run_id)
        ctx.event(
            f"{count} rows without a split given one by the run ({self.unassigned}) and "
            "written back to the model run",
            **{name.lower(): n for name, n in written.items()},
        )

    def _load_splits(self, ctx: RunContext, db: sqlite3.Connection) -> None:
        db.execute("DROP TABLE IF EXISTS splits")
        db.execute("CREATE TABLE splits (id TEXT PRIMARY KEY, split TEXT NOT NULL)")
        batch: list[tuple[str, str]] = []
        for entry in _data_splits(self.connection.model_run()):
            batch.append(entry)
            if len(batch) >= _PROGRESS_EVERY:
                db.executemany("INSERT OR REPLACE INTO splits VALUES (?, ?)", batch)
                batch.clear()
                ctx.check_cancelled()
        db.executemany("INSERT OR REPLACE INTO splits VALUES (?, ?)", batch)
        db.commit()

    def _sdk_call(self, ctx: RunContext) -> export_stream.SdkCall:
        def call(fn: Callable[[], T], what: str) -> T:
            return self.connection.call(fn, what, run_id=ctx.run_id)

        return call


def _data_splits(model_run: Any) -> Iterator[tuple[str, str]]:
    for entry in model_run.model_run_data_rows():
        split = entry.data_split
        value = getattr(split, "value", split)
        yield str(entry.data_row().uid), str(value).lower()


def _data_row_id(row: dict[str, Any]) -> str | None:
    data_row = row.get("data_row")
    if isinstance(data_row, dict) and isinstance(data_row.get("id"), str):
        return str(data_row["id"])
    legacy = row.get("DataRow ID")
    return legacy if isinstance(legacy, str) else None


def _split_of(row: dict[str, Any], model_run_id: str) -> str | None:
    """The split an export row carries for this model run (any case), or None."""
    legacy = row.get("Data Split")
    if isinstance(legacy, str) and legacy:
        return legacy
    experiments = row.get("experiments")
    if not isinstance(experiments, dict):
        return None
    for experiment in experiments.values():
        runs = experiment.get("runs") if isinstance(experiment, dict) else None
        run = runs.get(model_run_id) if isinstance(runs, dict) else None
        split = run.get("split") if isinstance(run, dict) else None
        if isinstance(split, str) and split:
            return split
    return None


def _has_split(row: dict[str, Any], model_run_id: str) -> bool:
    """True when the row carries a training, validation or test split for this run."""
    return Split.parse(_split_of(row, model_run_id)) is not Split.UNASSIGNED


def _set_split(row: dict[str, Any], model_id: str, model_run_id: str, split: str) -> None:
    experiments = row.setdefault("experiments", {})
    if not isinstance(experiments, dict):
        return
    experiment = experiments.setdefault(model_id, {})
    runs = experiment.setdefault("runs", {}) if isinstance(experiment, dict) else None
    run = runs.setdefault(model_run_id, {}) if isinstance(runs, dict) else None
    if isinstance(run, dict):
        run["split"] = split
