"""Two or more runs side by side: headline figures, per-class AP, PR curves overlaid and
confusion matrices, each difference against the first run (the baseline) marked better/worse.

Reads each run's ``metrics.json``; charts come from ``vmt.evaluation.svg_charts`` (inline SVG,
every label escaped there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from vmt.errors import InputError
from vmt.evaluation.svg_charts import Series, color, heatmap, line_chart
from vmt.pipeline import artifacts
from vmt.pipeline.store import RunStore

MAX_RUNS = 6
MAX_CURVE_CLASSES = 6
MAX_MATRIX_CLASSES = 12
SAME = 0.0005
"""Differences smaller than this (after rounding to 4 significant digits) count as equal."""

HEADLINE_FIGURES = (
    ("mAP", "map"),
    ("AP50", "map_50"),
    ("AP75", "map_75"),
    ("AR@100", "mar_100"),
)


@dataclass(frozen=True, slots=True)
class Cell:
    """One figure of one run, with its difference from the baseline run."""

    value: float | None
    delta: float | None = None

    @property
    def trend(self) -> str:
        """``better``, ``worse``, ``same`` or empty (baseline, or a value missing)."""
        if self.delta is None:
            return ""
        if abs(self.delta) < SAME:
            return "same"
        return "better" if self.delta > 0 else "worse"


@dataclass(frozen=True, slots=True)
class FigureRow:
    name: str
    cells: list[Cell]


@dataclass(frozen=True, slots=True)
class RunColumn:
    run_id: str
    label: str
    state: str
    color: str
    evaluated: bool


@dataclass(frozen=True, slots=True)
class Comparison:
    runs: list[RunColumn]
    headline: list[FigureRow]
    per_class_ap50: list[FigureRow]
    per_class_ap: list[FigureRow]
    pr_curves: list[str]
    """One SVG per class (the classes with most ground truth), a line per run."""
    confusion: list[tuple[str, str]]
    """(run id, SVG) per evaluated run."""


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _cells(values: Sequence[float | None]) -> list[Cell]:
    base = values[0]
    cells = [Cell(base)]
    for value in values[1:]:
        delta = None if value is None or base is None else value - base
        cells.append(Cell(value, delta))
    return cells


def load_metrics(store: RunStore, run_id: str) -> dict[str, Any] | None:
    """The run's ``metrics.json`` document; None before its evaluation."""
    path = store.run_dir(run_id) / artifacts.METRICS_FILE
    if not path.is_file():
        return None
    document = orjson.loads(path.read_bytes())
    return document if isinstance(document, dict) else None


def _ordered_classes(documents: Sequence[Mapping[str, Any]]) -> list[str]:
    gt: dict[str, int] = {}
    for doc in documents:
        for name, figures in (doc.get("per_class") or {}).items():
            gt[name] = max(gt.get(name, 0), int(figures.get("gt_count") or 0))
    return sorted(gt, key=lambda name: (-gt[name], name))


def _pr_charts(
    classes: Sequence[str],
    documents: Sequence[Mapping[str, Any] | None],
    columns: Sequence[RunColumn],
) -> list[str]:
    charts = []
    for name in classes[:MAX_CURVE_CLASSES]:
        series = []
        for i, (doc, column) in enumerate(zip(documents, columns, strict=True)):
            curves = (doc or {}).get("pr_curves") or {}
            precision = (curves.get("per_class") or {}).get(name)
            if not precision:
                continue
            recall = curves.get("recall") or []
            series.append(Series(column.run_id, recall, precision, column.color, dashed=i > 0))
        if series:
            charts.append(
                line_chart(
                    series,
                    title=f"{name}: precision-recall",
                    x_label="recall",
                    y_label="precision",
                    width=460,
                    height=300,
                )
            )
    return charts


def _confusion_chart(doc: Mapping[str, Any], run_id: str) -> str | None:
    matrix = doc.get("confusion_matrix") or {}
    labels: list[str] = list(matrix.get("labels") or [])
    values: list[list[int]] = list(matrix.get("matrix") or [])
    if not labels or not values:
        return None
    if len(labels) - 1 > MAX_MATRIX_CLASSES:  # keep the classes with most ground truth
        order = sorted(range(len(labels) - 1), key=lambda k: -sum(values[k]))[:MAX_MATRIX_CLASSES]
        keep = [*sorted(order), len(labels) - 1]
        labels = [labels[k] for k in keep]
        values = [[values[i][j] for j in keep] for i in keep]
    return heatmap(
        values,
        labels,
        labels,
        title=f"{run_id}: confusion matrix",
        row_axis="ground truth ↓",
        col_axis="prediction →",
        cell=36,
    )


def compare_runs(store: RunStore, run_ids: Sequence[str]) -> Comparison:
    """The comparison of ``run_ids`` (2 to ``MAX_RUNS``; the oldest is the baseline, the others
    follow in the order they were created). Raises ``InputError`` for fewer than two runs or
    too many, ``UnknownRunError`` for an unknown id."""
    ids = list(dict.fromkeys(run_ids))
    if len(ids) < 2:
        raise InputError("pick at least two runs to compare")
    if len(ids) > MAX_RUNS:
        raise InputError(f"compare at most {MAX_RUNS} runs at once")
    records = sorted((store.get_run(run_id) for run_id in ids), key=lambda r: (r.created, r.id))
    ids = [record.id for record in records]
    documents = [load_metrics(store, run_id) for run_id in ids]
    columns = [
        RunColumn(
            run_id=record.id,
            label=record.config.label or record.config.source.kind,
            state=record.state.value,
            color=color(i),
            evaluated=doc is not None,
        )
        for i, (record, doc) in enumerate(zip(records, documents, strict=True))
    ]
    docs = [doc or {} for doc in documents]
    headline = [
        FigureRow(title, _cells([_number(doc.get(key)) for doc in docs]))
        for title, key in HEADLINE_FIGURES
    ]
    classes = _ordered_classes(docs)

    def per_class(figure: str) -> list[FigureRow]:
        return [
            FigureRow(
                name,
                _cells(
                    [
                        _number(((doc.get("per_class") or {}).get(name) or {}).get(figure))
                        for doc in docs
                    ]
                ),
            )
            for name in classes
        ]

    confusion = []
    for column, doc in zip(columns, docs, strict=True):
        chart = _confusion_chart(doc, column.run_id) if doc else None
        if chart is not None:
            confusion.append((column.run_id, chart))
    return Comparison(
        runs=columns,
        headline=headline,
        per_class_ap50=per_class("ap_50"),
        per_class_ap=per_class("ap"),
        pr_curves=_pr_charts(classes, documents, columns),
        confusion=confusion,
    )
