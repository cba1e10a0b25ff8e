"""The ``files`` source (a Labelbox export file) and the ``folder`` sink (a results folder).

No cloud involved: ``vmt run --export FILE --out DIR`` and ``vmt demo`` use these. Image
``row_data`` (local paths, ``file://`` URIs, http(s) URLs) are resolved by the trainer's
``prepare``; the source only copies the export into the run folder, so a resumed run reads the
same rows even if the original file changed or disappeared.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import orjson

from vmt.durable_files import copy_atomic, write_atomic
from vmt.errors import InputError
from vmt.formats.image_uri import resolve_relative
from vmt.pipeline.protocols import MODEL_HANDLE, REPORT_HANDLE, RunContext, RunStatus

log = logging.getLogger("vmt")

COPY_CHUNK = 1 << 20


class FileSource:
    """Rows from an export file on disk (plain or ``.gz``); relative ``row_data`` paths are
    taken from ``images_dir`` (default: the export's folder). ``unassigned`` None: the policy
    the export calls for (``vmt.formats.split_policy``)."""

    def __init__(
        self,
        export_path: Path,
        images_dir: Path | None = None,
        *,
        unassigned: str | None = None,
    ) -> None:
        self.export_path = export_path
        self.images_dir = images_dir if images_dir is not None else export_path.parent
        self.unassigned = unassigned

    def locate_image(self, uri: str) -> str:
        return resolve_relative(uri, self.images_dir)

    def export(self, ctx: RunContext, dest: Path) -> None:
        if not self.export_path.is_file():
            raise InputError(f"export file not found: {self.export_path}")
        total = self.export_path.stat().st_size
        done = 0
        try:
            with _open_export(self.export_path) as src, dest.open("wb") as out:
                while chunk := _read(src):
                    out.write(chunk)
                    done = min(done + len(chunk), total)
                    ctx.progress(done, total, what="bytes")
        except (OSError, EOFError) as exc:
            raise InputError(f"cannot read export file {self.export_path}: {exc}") from exc
        ctx.event("export copied", path=str(self.export_path), bytes=dest.stat().st_size)


def _open_export(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _read(handle: IO[bytes]) -> bytes:
    return handle.read(COPY_CHUNK)


class FolderSink:
    """Results in a folder: ``predictions.ndjson`` (Labelbox upload format, with confidence),
    ``metrics.json``, ``report.html``, ``row_metrics.ndjson``, ``model/`` and a status log."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def report_status(
        self,
        ctx: RunContext,
        status: RunStatus,
        *,
        metadata: Mapping[str, object],
        error: str | None = None,
    ) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        record = {"ts": time.time(), "status": status.value, "metadata": dict(metadata)}
        if error is not None:
            record["error"] = error
        line = orjson.dumps(record, default=str)
        with (self.out_dir / "status.ndjson").open("ab") as out:
            out.write(line + b"\n")
        write_atomic(self.out_dir / "status.json", line)

    def publish(
        self,
        ctx: RunContext,
        *,
        predictions: Path,
        metrics: Path,
        row_metrics: Path | None,
        report: Path | None,
    ) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        copy_atomic(predictions, self.out_dir / "predictions.ndjson")
        copy_atomic(metrics, self.out_dir / "metrics.json")
        if row_metrics is not None:
            copy_atomic(row_metrics, self.out_dir / "row_metrics.ndjson")
        if report is not None:
            copy_atomic(report, self.out_dir / "report.html")
            ctx.set_handle(REPORT_HANDLE, str(self.out_dir / "report.html"))
        model = ctx.get_handle(MODEL_HANDLE)
        if model is not None and Path(model).exists():
            dest = self.out_dir / "model" / Path(model).name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if Path(model).is_dir():
                shutil.copytree(model, dest, dirs_exist_ok=True)
            else:
                copy_atomic(Path(model), dest)
        ctx.event("results written", folder=str(self.out_dir))
