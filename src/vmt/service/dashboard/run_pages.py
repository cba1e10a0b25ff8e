"""What the runs page and the run page show, read from the run store (no HTTP here).

A page of the runs list costs three indexed queries whatever the store holds (the runs of the
page, their stages (each training's cost is in its result) and one count. Trainer titles
and console links come from the trainer registry.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vmt.backends.registry import TrainerSpec, trainer_specs
from vmt.domain import Rejection
from vmt.pipeline import artifacts
from vmt.pipeline.protocols import Stage
from vmt.pipeline.results import ROW_SET_NAMES, Headline, TrainResult, headline_of
from vmt.pipeline.store import RunRecord, RunState, RunStore, StageRecord, StageState
from vmt.service.dashboard.links import Link, run_links

PAGE_SIZE = 50
REJECTION_EXAMPLES = 3
"""First examples shown per rejection reason."""
REJECTION_SCAN_LIMIT = 100_000
"""Lines of rejections.jsonl read at most to find those examples."""
EVENTS_SHOWN = 100


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def display_state(run: RunRecord) -> str:
    """The state, with ``interrupted`` for a running run that no live process advances."""
    if run.state is RunState.RUNNING and not run.is_active():
        return "interrupted"
    return run.state.value


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int | None

    @property
    def percent(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(100.0, 100.0 * self.done / self.total))


@dataclass(frozen=True, slots=True)
class RunRow:
    """One line of the runs list."""

    run_id: str
    state: str
    stage: str | None
    progress: Progress | None
    trainer: str
    trainer_title: str
    """The registered trainer's title (its name when it is not registered here)."""
    label: str
    rows_used: int | None
    rows_rejected: int | None
    headline: Headline | None
    cost_usd: float | None
    started: str
    duration_seconds: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class RunsPage:
    rows: list[RunRow]
    state: str | None
    page: int
    pages: int
    total: int
    states: tuple[str, ...] = tuple(s.value for s in RunState)


def _trainer_of(run: RunRecord) -> TrainerSpec | None:
    """The run's registered trainer; None for a kind this process does not know."""
    return next((s for s in trainer_specs() if s.name == run.config.trainer.kind), None)


def _cost_usd(stages: Mapping[Stage, StageRecord]) -> float | None:
    """What the run's training cost (its ``TrainResult``), None before training or unknown."""
    trained = stages.get(Stage.TRAIN)
    if trained is None or trained.state is not StageState.DONE:
        return None
    return TrainResult.from_json(trained.outputs).cost_usd


def _duration(run: RunRecord, stages: Mapping[Stage, StageRecord]) -> float | None:
    started = [s.started for s in stages.values() if s.started is not None]
    if not started:
        return None
    if run.state in (RunState.PENDING, RunState.RUNNING) and run.is_active():
        end = time.time()
    else:
        end = run.updated
    return max(0.0, end - min(started))


def _row(run: RunRecord, stages: Mapping[Stage, StageRecord]) -> RunRow:
    prepared = stages.get(Stage.PREPARE)
    outputs = prepared.outputs if prepared else {}
    current = stages.get(run.stage) if run.stage else None
    progress = None
    if (
        current is not None
        and current.state is StageState.RUNNING
        and current.progress_done is not None
    ):
        progress = Progress(current.progress_done, current.progress_total)
    started = [s.started for s in stages.values() if s.started is not None]
    return RunRow(
        run_id=run.id,
        state=display_state(run),
        stage=run.stage.value if run.stage else None,
        progress=progress,
        trainer=run.config.trainer.kind,
        trainer_title=(spec.title if (spec := _trainer_of(run)) else run.config.trainer.kind),
        label=run.config.label or run.config.source.kind,
        rows_used=outputs.get("samples"),
        rows_rejected=outputs.get("rejected"),
        headline=headline_of(run.metrics),
        cost_usd=_cost_usd(stages),
        started=_iso(min(started) if started else run.created) or "",
        duration_seconds=_duration(run, stages),
        error=run.error,
    )


def runs_page(store: RunStore, *, state: str | None, page: int, size: int = PAGE_SIZE) -> RunsPage:
    """Page ``page`` (1-based) of the runs, newest first, optionally only one state."""
    wanted = RunState(state) if state else None
    total = store.count_runs(state=wanted)
    pages = max(1, -(-total // size))
    page = max(1, min(page, pages))
    runs = store.page_runs(state=wanted, limit=size, offset=(page - 1) * size)
    ids = [run.id for run in runs]
    stages = store.stages_of(ids)
    rows = [_row(run, stages.get(run.id, {})) for run in runs]
    return RunsPage(rows=rows, state=state, page=page, pages=pages, total=total)


@dataclass(frozen=True, slots=True)
class StageView:
    name: str
    state: str
    started: str | None
    seconds: float | None
    attempts: int
    progress: Progress | None
    error: str | None
    outputs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EventView:
    time: str
    stage: str | None
    message: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RejectionReason:
    reason: str
    count: int
    examples: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RunDetail:
    row: RunRow
    model_run_id: str | None
    cancel_requested: bool
    can_cancel: bool
    can_resume: bool
    stages: list[StageView]
    events: list[EventView]
    events_total: int
    errors: list[EventView]
    rejections: list[RejectionReason]
    row_sets: dict[str, dict[str, Any]]
    has_report: bool
    links: list[Link]


def _stage_view(record: StageRecord) -> StageView:
    progress = None
    if record.progress_done is not None:
        progress = Progress(record.progress_done, record.progress_total)
    seconds = record.seconds
    if seconds is None and record.state is StageState.RUNNING and record.started is not None:
        seconds = max(0.0, time.time() - record.started)
    outputs = {k: v for k, v in record.outputs.items() if not isinstance(v, dict | list)}
    return StageView(
        name=record.stage.value,
        state=record.state.value,
        started=_iso(record.started),
        seconds=seconds,
        attempts=record.attempts,
        progress=progress,
        error=record.error,
        outputs=outputs,
    )


def rejections_by_reason(
    by_reason: Mapping[str, int], path: Path, *, examples: int = REJECTION_EXAMPLES
) -> list[RejectionReason]:
    """Counts per reason (from the prepare stage) with the first ``examples`` rows of each from
    ``rejections.jsonl`` (read until each reason has its examples, at most
    ``REJECTION_SCAN_LIMIT`` lines)."""
    counts = dict(by_reason)
    found: dict[str, list[Rejection]] = {}
    if path.exists():
        for rejection in itertools.islice(artifacts.read_rejections(path), REJECTION_SCAN_LIMIT):
            if not by_reason:
                counts[rejection.reason] = counts.get(rejection.reason, 0) + 1
            kept = found.setdefault(rejection.reason, [])
            if len(kept) < examples:
                kept.append(rejection)
            elif by_reason and all(
                len(found.get(r, ())) >= min(examples, n) for r, n in counts.items()
            ):
                break
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [RejectionReason(reason, n, found.get(reason, [])) for reason, n in ordered if n]


def run_detail(store: RunStore, run_id: str) -> RunDetail:
    """Everything the run page shows. Raises ``UnknownRunError`` for an unknown id."""
    run = store.get_run(run_id)
    stage_records = store.stages(run_id)
    by_stage = {s.stage: s for s in stage_records}
    handles = store.handles(run_id)
    trainer = _trainer_of(run)
    row = _row(run, by_stage)
    events = [
        EventView(_iso(e.ts) or "", e.stage.value if e.stage else None, e.message, e.data)
        for e in store.events(run_id, last=EVENTS_SHOWN)
    ]
    errors = [
        EventView(
            _iso(e.ts) or "", e.stage.value if e.stage else None, f"{e.kind}: {e.message}", {}
        )
        for e in store.errors(run_id, last=20)
    ]
    prepared = by_stage[Stage.PREPARE]
    rejections = rejections_by_reason(
        prepared.outputs.get("rejections_by_reason", {}),
        store.run_dir(run_id) / artifacts.REJECTIONS_FILE,
    )
    row_sets = {
        ROW_SET_NAMES.get(name, name): dict(values)
        for name, values in run.metrics.items()
        if isinstance(values, Mapping)
    }
    source = run.config.source.options
    model_run = source.get("model_run_id")
    state = row.state
    return RunDetail(
        row=row,
        model_run_id=model_run if isinstance(model_run, str) else None,
        cancel_requested=run.cancel_requested,
        can_cancel=run.state not in (RunState.COMPLETE, RunState.CANCELLED),
        can_resume=state in ("failed", "interrupted", "pending", "planned"),
        stages=[_stage_view(s) for s in stage_records],
        events=events[::-1],
        events_total=store.count_events(run_id),
        errors=errors,
        rejections=rejections,
        row_sets=row_sets,
        has_report=report_path(store, run_id) is not None,
        links=run_links(source, handles, trainer),
    )


def report_path(store: RunStore, run_id: str) -> Path | None:
    """The run's HTML report, when evaluation wrote one."""
    path = store.run_dir(run_id) / artifacts.REPORT_FILE
    return path if path.is_file() else None


def live_status(store: RunStore, run_id: str) -> dict[str, Any]:
    """The small JSON the run page polls while the run moves: state and each stage's progress."""
    run = store.get_run(run_id)
    stages = []
    records = store.stages(run_id)
    for record in records:
        view = _stage_view(record)
        stages.append(
            {
                "stage": view.name,
                "state": view.state,
                "done": view.progress.done if view.progress else None,
                "total": view.progress.total if view.progress else None,
                "percent": view.progress.percent if view.progress else None,
                "seconds": view.seconds,
            }
        )
    by_stage = {s.stage: s for s in records}
    return {
        "run_id": run.id,
        "state": display_state(run),
        "stage": run.stage,
        "seconds": _duration(run, by_stage),
        "stages": stages,
    }
