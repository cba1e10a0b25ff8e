"""The loop back into labelling over HTTP: ``POST /runs/{id}/prelabel`` and ``/runs/{id}/select``
(behind the API token), and the optional automatic pre-labelling of a project when a run
completes (``VMT_AUTO_PRELABEL_PROJECT`` + ``VMT_AUTO_PRELABEL_POOL``).

A request's ``pool`` is a pool file inside ``VMT_POOL_DIR`` (never a path elsewhere),
``labelbox-project:ID``, ``labelbox-dataset:ID`` (with the request's project: its rows not yet
in it) or ``global-keys:FILE`` (a keys file inside ``VMT_POOL_DIR``); a Labelbox pool is exported
into the run folder first (``backends/labelbox/pool_export.py``). The work runs in a
worker thread and the answer carries its summary; it is resumable like the CLI's (pool
predictions kept, imports and batches named deterministically), so a client that timed out can
simply send the request again.
"""

from __future__ import annotations

import logging
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal, Protocol, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from vmt.config import Settings
from vmt.errors import InputError, VmtError
from vmt.selection.strategies import (
    BATCH_NAME_HELP,
    OPTION_HELP,
    batch_name,
    selection_options,
    strategy_spec,
)

log = logging.getLogger("vmt")

_RUN_ID = Path(min_length=1, max_length=200, description="A run whose model is trained.")
_POOL = (
    "A pool export file in VMT_POOL_DIR, labelbox-project:ID (its rows without a label), "
    "labelbox-dataset:ID (with the project: its rows not yet in it) or global-keys:FILE "
    "(a file of global keys in VMT_POOL_DIR)."
)


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must not hold control characters (NUL, newlines, ...)")
    return value


PoolName = Annotated[
    str, Field(min_length=1, max_length=1000, description=_POOL), AfterValidator(_printable)
]


class PrelabelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pool: PoolName
    project: str = Field(min_length=1, description="The Labelbox project to pre-label.")
    confidence: float | Literal["auto"] = "auto"


class SelectRequest(BaseModel):
    """``vmt select``'s options as a request body (the selection options of
    ``vmt.selection.strategies.OPTION_HELP``, the same for both)."""

    model_config = ConfigDict(extra="forbid")

    pool: PoolName
    strategy: str = "least_confidence"
    budget: int = Field(ge=1, le=1_000_000)
    threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description=OPTION_HELP["threshold"]
    )
    window: float | None = Field(default=None, ge=0.0, le=1.0, description=OPTION_HELP["window"])
    score_floor: float | None = Field(
        default=None, ge=0.0, le=1.0, description=OPTION_HELP["score_floor"]
    )
    seed: int = Field(default=0, description=OPTION_HELP["seed"])
    base: str = Field(default="least_confidence", description=OPTION_HELP["base"])
    candidate_factor: int | None = Field(
        default=None, ge=1, le=1000, description=OPTION_HELP["candidate_factor"]
    )
    project: str | None = None
    batch: str | None = Field(default=None, description=BATCH_NAME_HELP)
    priority: int = Field(default=5, ge=1, le=5)
    prelabel: bool = False


class LabellingService(Protocol):
    """What the routes need; ``PipelineLabelling`` is the real one."""

    def prelabel(self, run_id: str, request: PrelabelRequest) -> dict[str, Any]: ...

    def select(self, run_id: str, request: SelectRequest) -> dict[str, Any]: ...


class PipelineLabelling:
    """The labelling loop on this deployment's run store and Labelbox."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _file(self, name: str) -> FilePath:
        if self.settings.pool_dir is None:
            raise InputError("this service has no VMT_POOL_DIR: it reads pool files only there")
        root = self.settings.pool_dir.resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise InputError(f"no pool file {name!r} in VMT_POOL_DIR")
        return path

    def _pool(
        self, text: str, *, store: Any, run_id: str, project_id: str | None, prelabel: bool
    ) -> tuple[FilePath, dict[str, Any] | None]:
        """The pool's export file (a Labelbox pool exported into the run folder now) and, for a
        Labelbox pool, what the export wrote and left out."""
        from vmt.backends.labelbox.pool_export import resolve_pool
        from vmt.pipeline.context import DetachedRunContext
        from vmt.pool.pool_spec import PoolKind, PoolSpec

        spec = PoolSpec.parse(text)
        if prelabel:
            spec.check_prelabel_target(project_id)
        else:
            spec.check_batch_target(project_id)
        if spec.kind in (PoolKind.FILE, PoolKind.GLOBAL_KEYS):
            spec = PoolSpec(spec.kind, str(self._file(spec.value)))
        if not spec.is_labelbox:
            return spec.path, None
        base = store.run_dir(run_id)
        path, export = resolve_pool(
            spec,
            settings=self.settings,
            base=base,
            project_id=project_id,
            watcher=DetachedRunContext(run_id, base, {}),
        )
        return path, export.to_json() if export is not None else None

    def _run(self, run_id: str) -> tuple[Any, Any]:
        from vmt.backends.factory import trained_run

        return trained_run(run_id, self.settings)

    def prelabel(self, run_id: str, request: PrelabelRequest) -> dict[str, Any]:
        from vmt.backends.labelbox.labelling_loop import prelabel_project
        from vmt.backends.labelbox.project import LabelboxProject
        from vmt.pool.prelabel import prelabel_pool

        store, trainer = self._run(run_id)
        pool, exported = self._pool(
            request.pool, store=store, run_id=run_id, project_id=request.project, prelabel=True
        )
        confidence = None if request.confidence == "auto" else float(request.confidence)
        prelabels = prelabel_pool(store, run_id, pool=pool, trainer=trainer, confidence=confidence)
        imported = prelabel_project(
            LabelboxProject(self.settings, request.project),
            run_id=run_id,
            prelabels=prelabels,
            pool_export=pool,
        )
        return {
            "run_id": run_id,
            "project": request.project,
            **({"pool_export": exported} if exported is not None else {}),
            "confidence": prelabels.threshold,
            "confidence_source": prelabels.threshold_source,
            "pool_predictions_reused": prelabels.pool.reused,
            "imports": {
                k: v for k, v in imported.summary.to_json().items() if k != "failure_files"
            },
        }

    def select(self, run_id: str, request: SelectRequest) -> dict[str, Any]:
        from vmt.pool.select import select_from_run

        strategy_spec(request.strategy)
        options = selection_options(
            **{name: getattr(request, name) for name in OPTION_HELP if name != "threshold"}
        )
        store, trainer = self._run(run_id)
        pool, exported = self._pool(
            request.pool, store=store, run_id=run_id, project_id=request.project, prelabel=False
        )
        result = select_from_run(
            store,
            run_id,
            pool=pool,
            trainer=trainer,
            strategy=request.strategy,
            budget=request.budget,
            options=options,
            threshold=request.threshold,
        )
        answer: dict[str, Any] = {
            "run_id": run_id,
            "strategy": request.strategy,
            "threshold": result.threshold,
            "pool_rows": result.ranking.pool_rows,
            **({"pool_export": exported} if exported is not None else {}),
            "notes": list(result.ranking.notes),
            "rows": [
                {
                    "rank": r.rank,
                    "data_row_id": r.data_row_id,
                    "global_key": r.global_key,
                    "score": r.score,
                    "reason": r.reason,
                }
                for r in result.ranking.rows
            ],
        }
        if request.project is not None:
            answer["labelbox"] = self._send(run_id, request, result, pool)
        return answer

    def _send(
        self, run_id: str, request: SelectRequest, result: Any, pool: FilePath
    ) -> dict[str, Any]:
        from vmt.backends.labelbox.labelling_loop import prelabel_project, send_to_project
        from vmt.backends.labelbox.project import LabelboxProject
        from vmt.pool.prelabel import prelabel_pool

        assert request.project is not None
        project = LabelboxProject(self.settings, request.project)
        ids = [r.data_row_id for r in result.ranking.rows]
        batch = request.batch or batch_name(request.strategy, ids)
        sent = send_to_project(project, data_row_ids=ids, batch=batch, priority=request.priority)
        out: dict[str, Any] = {
            "batches_created": sent.created,
            "batches_existing": sent.existing,
            "batch_rows_refused": sent.refused,
        }
        if request.prelabel:
            store, trainer = self._run(run_id)
            prelabels = prelabel_pool(store, run_id, pool=pool, trainer=trainer)
            imported = prelabel_project(
                project, run_id=run_id, prelabels=prelabels, pool_export=pool, only=ids
            )
            out["prelabels"] = {
                k: v for k, v in imported.summary.to_json().items() if k != "failure_files"
            }
        return out

    def auto_prelabel(self, run_id: str) -> None:
        """Pre-label the configured project with a run that just completed; a failure is
        logged and recorded on the run's events, never raised (the run stays complete)."""
        project, pool = self.settings.auto_prelabel_project, self.settings.auto_prelabel_pool
        if not project or not pool:
            return
        from vmt.pipeline.store import RunStore

        store = RunStore.for_settings(self.settings)
        try:
            answer = self.prelabel(run_id, PrelabelRequest(pool=pool, project=project))
        except VmtError as exc:
            log.warning("run %s: automatic pre-labelling of %s failed: %s", run_id, project, exc)
            store.add_event(run_id, "automatic pre-labelling failed", data={"error": exc.message})
            return
        store.add_event(run_id, "automatic pre-labelling done", data=answer["imports"])


_M = TypeVar("_M", bound=BaseModel)


async def _parsed(request: Request, model: type[_M]) -> _M:
    """The body as ``model``, read only after the token was checked (the dependency runs
    first: this route declares no body parameter for FastAPI to parse before it). The body is
    already bounded by ``vmt.service.guards``. Raises ``RequestValidationError`` (422)."""
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False), body=None) from None


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def labelling_router(*, labelling: LabellingService, require_token: Any) -> APIRouter:
    router = APIRouter(tags=["labelling"], dependencies=[Depends(require_token)])

    @router.post(
        "/runs/{run_id}/prelabel",
        summary="Pre-label a project with a run's model",
        openapi_extra=_body(PrelabelRequest),
    )
    async def prelabel(request: Request, run_id: str = _RUN_ID) -> JSONResponse:
        parsed = await _parsed(request, PrelabelRequest)
        answer = await run_in_threadpool(labelling.prelabel, run_id, parsed)
        return JSONResponse(answer)

    @router.post(
        "/runs/{run_id}/select",
        summary="Rank a pool (and send the top rows to label)",
        openapi_extra=_body(SelectRequest),
    )
    async def select(request: Request, run_id: str = _RUN_ID) -> JSONResponse:
        parsed = await _parsed(request, SelectRequest)
        answer = await run_in_threadpool(labelling.select, run_id, parsed)
        return JSONResponse(answer)

    return router
