"""A run's per-row error table: built once per (run, confidence) from an ``Evaluation`` into a
small SQLite file in the run folder, then queried by the rows pages (filter, sort, page).

Nothing here matches boxes: the causes are the evaluation's own (``ErrorBreakdown.det_cause``,
``gt_missed``, ``Evaluation.det_true_positive``), so the table says what metrics.json says.

Tables: ``rows`` (one per evaluated row, its counts per error kind and a label-error suspicion
score), ``row_classes`` (a row with an error of class k), ``boxes`` (every ground-truth box and
every prediction, with its status), ``meta`` (classes, IoU, confidence).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vmt.evaluation.error_breakdown import ERROR_KINDS
from vmt.evaluation.result import Evaluation

FILTERS = ("all", "errors", *ERROR_KINDS, "suspect")
"""Row filters: any row, a row with any error, a row with one kind, a likely label error."""
SUSPECT_SCORE = 0.7
"""A false positive this confident that overlaps nothing (background) or a box of another class
(classification) is a likely labelling mistake."""
_KIND_COLUMNS = {kind: kind for kind in ERROR_KINDS}

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE rows (
  idx INTEGER PRIMARY KEY, data_row_id TEXT NOT NULL, global_key TEXT, split TEXT NOT NULL,
  image_uri TEXT NOT NULL, width INTEGER, height INTEGER,
  tp INTEGER NOT NULL, fp INTEGER NOT NULL, fn INTEGER NOT NULL, errors INTEGER NOT NULL,
  localisation INTEGER NOT NULL, classification INTEGER NOT NULL, duplicate INTEGER NOT NULL,
  background INTEGER NOT NULL, both INTEGER NOT NULL, missed INTEGER NOT NULL,
  suspect REAL NOT NULL
);
CREATE TABLE row_classes (cls INTEGER NOT NULL, idx INTEGER NOT NULL,
  PRIMARY KEY (cls, idx)) WITHOUT ROWID;
CREATE TABLE boxes (
  idx INTEGER NOT NULL, kind TEXT NOT NULL, label INTEGER NOT NULL,
  x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL,
  score REAL, status TEXT NOT NULL, iou REAL
);
"""
_INDEXES = """
CREATE INDEX rows_by_errors ON rows (errors DESC, idx);
CREATE INDEX rows_by_suspect ON rows (suspect DESC, idx);
CREATE INDEX rows_by_id ON rows (data_row_id);
CREATE INDEX boxes_by_row ON boxes (idx);
"""


def _det_status(ev: Evaluation, cause: np.ndarray, kept: np.ndarray) -> list[str]:
    """``tp``, ``below`` (under the confidence), or the false positive's cause."""
    out = []
    for d in range(len(ev.data.dt)):
        if not kept[d]:
            out.append("below")
        elif cause[d] >= 0:
            out.append(ERROR_KINDS[int(cause[d])])
        elif ev.det_true_positive[d]:
            out.append("tp")
        else:
            out.append("ignored")
    return out


def _per_row_counts(ev: Evaluation, cause: np.ndarray, missed: np.ndarray) -> np.ndarray:
    """``[rows, len(ERROR_KINDS)]`` counts of each kind."""
    n_rows = len(ev.data.rows)
    out = np.zeros((n_rows, len(ERROR_KINDS)), dtype=np.int64)
    dt, gt = ev.data.dt, ev.data.gt
    for j in range(len(ERROR_KINDS) - 1):
        out[:, j] = np.bincount(dt.image[cause == j], minlength=n_rows)
    out[:, -1] = np.bincount(gt.image[missed], minlength=n_rows)
    return out


def _suspect(ev: Evaluation, cause: np.ndarray) -> np.ndarray:
    """Per row: the score of its most confident background or classification false positive
    at or above ``SUSPECT_SCORE`` (0 when none)."""
    dt = ev.data.dt
    bkg, cls = ERROR_KINDS.index("background"), ERROR_KINDS.index("classification")
    sel = ((cause == bkg) | (cause == cls)) & (dt.score >= SUSPECT_SCORE)
    out = np.zeros(len(ev.data.rows), dtype=np.float64)
    np.maximum.at(out, dt.image[sel], dt.score[sel])
    return out


def write_row_table(ev: Evaluation, path: Path) -> None:
    """Write the table of ``ev`` to ``path`` (a temporary file renamed when complete).
    Raises ``ValueError`` for an evaluation without its per-box error causes."""
    errors = ev.errors
    if errors.det_cause is None or errors.gt_missed is None or errors.det_iou is None:
        raise ValueError("evaluation has no per-box error causes")
    cause, missed = errors.det_cause, errors.gt_missed
    dt, gt = ev.data.dt, ev.data.gt
    kept = dt.score >= ev.confidence
    counts = _per_row_counts(ev, cause, missed)
    suspect = _suspect(ev, cause)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(_SCHEMA)
        meta = {"classes": list(ev.classes), "iou": ev.iou, "confidence": ev.confidence}
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()]
        )
        conn.executemany(
            "INSERT INTO rows VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    i, s.data_row_id, s.global_key, s.split.value, s.image_uri, s.width,
                    s.height, int(ev.row_tp[i]), int(ev.row_fp[i]), int(ev.row_fn[i]),
                    int(ev.row_fp[i] + ev.row_fn[i]), *map(int, counts[i]), float(suspect[i]),
                )
                for i, s in enumerate(ev.data.rows)
            ),
        )  # fmt: skip
        wrong = set(zip(dt.image[cause >= 0].tolist(), dt.label[cause >= 0].tolist(), strict=True))
        wrong |= set(zip(gt.image[missed].tolist(), gt.label[missed].tolist(), strict=True))
        conn.executemany("INSERT INTO row_classes VALUES (?, ?)", ((k, i) for i, k in wrong))
        gt_status = np.where(missed, "missed", "found")
        conn.executemany(
            "INSERT INTO boxes VALUES (?,?,?,?,?,?,?,NULL,?,NULL)",
            zip(gt.image.tolist(), ["gt"] * len(gt), gt.label.tolist(), gt.x.tolist(),
                gt.y.tolist(), gt.w.tolist(), gt.h.tolist(), gt_status.tolist(), strict=True),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO boxes VALUES (?,?,?,?,?,?,?,?,?,?)",
            zip(dt.image.tolist(), ["dt"] * len(dt), dt.label.tolist(), dt.x.tolist(),
                dt.y.tolist(), dt.w.tolist(), dt.h.tolist(), dt.score.tolist(),
                _det_status(ev, cause, kept), errors.det_iou.tolist(), strict=True),
        )  # fmt: skip
        conn.executescript(_INDEXES)
        conn.commit()
    finally:
        conn.close()
    tmp.replace(path)


@dataclass(frozen=True, slots=True)
class BoxRow:
    kind: str
    """``gt`` or ``dt``."""
    label: int
    x: float
    y: float
    w: float
    h: float
    score: float | None
    status: str
    """Ground truth: ``found``/``missed``; prediction: ``tp``, ``below``, ``ignored`` or an
    ``ERROR_KINDS`` cause."""
    iou: float | None


@dataclass(frozen=True, slots=True)
class TableRow:
    idx: int
    data_row_id: str
    global_key: str | None
    split: str
    image_uri: str
    width: int | None
    height: int | None
    tp: int
    fp: int
    fn: int
    errors: int
    kinds: dict[str, int]
    suspect: float

    @property
    def name(self) -> str:
        return self.global_key or self.data_row_id


def _table_row(r: sqlite3.Row) -> TableRow:
    return TableRow(
        idx=r["idx"], data_row_id=r["data_row_id"], global_key=r["global_key"],
        split=r["split"], image_uri=r["image_uri"], width=r["width"], height=r["height"],
        tp=r["tp"], fp=r["fp"], fn=r["fn"], errors=r["errors"],
        kinds={k: r[k] for k in ERROR_KINDS}, suspect=r["suspect"],
    )  # fmt: skip


class RowTable:
    """Read-only queries over one table file. Raises ``sqlite3.Error`` when unreadable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        self.classes: tuple[str, ...] = tuple(json.loads(meta["classes"]))
        self.iou = float(json.loads(meta["iou"]))
        self.confidence = float(json.loads(meta["confidence"]))

    def close(self) -> None:
        self._conn.close()

    def _where(self, kind: str, cls: int | None) -> tuple[str, str, list[Any]]:
        if kind not in FILTERS:
            raise ValueError(f"unknown filter {kind!r}")
        join, clauses, args = "", [], []
        if kind == "errors":
            clauses.append("r.errors > 0")
        elif kind == "suspect":
            clauses.append("r.suspect > 0")
        elif kind != "all":
            clauses.append(f"r.{_KIND_COLUMNS[kind]} > 0")
        if cls is not None:
            join = "JOIN row_classes c ON c.idx = r.idx AND c.cls = ?"
            args.append(cls)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return join, where, args

    def count(self, kind: str, cls: int | None = None) -> int:
        join, where, args = self._where(kind, cls)
        return int(
            self._conn.execute(f"SELECT COUNT(*) FROM rows r {join} {where}", args).fetchone()[0]
        )

    def page(self, kind: str, cls: int | None, *, limit: int, offset: int) -> list[TableRow]:
        """Rows that pass the filter, most errors first (``suspect``: most confident first)."""
        join, where, args = self._where(kind, cls)
        order = "r.suspect DESC, r.idx" if kind == "suspect" else "r.errors DESC, r.idx"
        found = self._conn.execute(
            f"SELECT r.* FROM rows r {join} {where} ORDER BY {order} LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [_table_row(r) for r in found]

    def error_counts(self) -> dict[str, int]:
        """``{data row id: errors}`` of every row."""
        found = self._conn.execute("SELECT data_row_id, errors FROM rows").fetchall()
        return {r[0]: int(r[1]) for r in found}

    def row(self, data_row_id: str) -> TableRow | None:
        found = self._conn.execute(
            "SELECT * FROM rows WHERE data_row_id = ? ORDER BY idx LIMIT 1", (data_row_id,)
        ).fetchone()
        return None if found is None else _table_row(found)

    def boxes(self, idxs: Sequence[int]) -> dict[int, list[BoxRow]]:
        """Every box of those rows, ground truth first, predictions by score descending."""
        out: dict[int, list[BoxRow]] = {i: [] for i in idxs}
        if not idxs:
            return out
        marks = ",".join("?" * len(idxs))
        found = self._conn.execute(
            f"SELECT * FROM boxes WHERE idx IN ({marks}) ORDER BY idx, kind DESC, score DESC",
            list(idxs),
        ).fetchall()
        for b in found:
            out[b["idx"]].append(
                BoxRow(b["kind"], b["label"], b["x"], b["y"], b["w"], b["h"], b["score"],
                       b["status"], b["iou"])
            )  # fmt: skip
        return out
