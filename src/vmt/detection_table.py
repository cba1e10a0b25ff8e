"""Many detections in columns: the bulk form of a sequence of ``Prediction`` objects.

Readers of prediction files fill a ``DetectionTable`` through ``DetectionTableBuilder``, which
also decides, line by line, what cannot be evaluated (unknown data row, unknown class, a row of
another split) and says why, with the line number. A table iterates as ``Prediction`` objects,
so it can go wherever an ``Iterable[Prediction]`` is expected; evaluation reads its columns
directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vmt.domain import Box, Detection, Prediction, Rejection, Sample
from vmt.reasons import Reason


@dataclass(frozen=True)
class DetectionTable:
    """Detections as parallel arrays; ``row``/``label`` index ``data_row_ids``/``labels``."""

    data_row_ids: tuple[str, ...]
    labels: tuple[str, ...]
    row: npt.NDArray[np.int64]
    label: npt.NDArray[np.int64]
    xywh: npt.NDArray[np.float64]
    """``(n, 4)`` pixel left, top, width, height: the width and height as the source gave them
    (a corner format's ``x1 - x0``), so sizes and IoUs are computed as pycocotools does."""
    score: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        n = self.row.shape[0]
        if self.label.shape != (n,) or self.score.shape != (n,) or self.xywh.shape != (n, 4):
            raise ValueError(
                f"columns disagree: row {self.row.shape}, label {self.label.shape}, "
                f"score {self.score.shape}, xywh {self.xywh.shape} (expected xywh ({n}, 4))"
            )

    def __len__(self) -> int:
        return int(self.row.shape[0])

    @property
    def xyxy(self) -> npt.NDArray[np.float64]:
        """``(n, 4)`` pixel corners ``x0, y0, x0 + width, y0 + height``."""
        corners = self.xywh.copy()
        corners[:, 2:] += self.xywh[:, :2]
        return corners

    @classmethod
    def from_predictions(cls, predictions: Iterable[Prediction]) -> DetectionTable:
        builder = DetectionTableBuilder()
        for prediction in predictions:
            builder.add_empty_row(prediction.data_row_id)
            for det in prediction.detections:
                b = det.box
                builder.add_xywh(
                    None,
                    prediction.data_row_id,
                    b.label,
                    (b.x0, b.y0, b.width, b.height),
                    det.score,
                )
        return builder.build()

    def __iter__(self) -> Iterator[Prediction]:
        """One ``Prediction`` per data row (first-seen order), detections in input order."""
        order = np.argsort(self.row, kind="stable")
        rows = self.row[order]
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if rows.size else rows
        stops = np.r_[starts[1:], rows.size] if rows.size else rows
        xywh = self.xywh.tolist()
        score = self.score.tolist()
        label = self.label.tolist()
        seen = np.zeros(len(self.data_row_ids), dtype=bool)
        for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
            r = int(rows[start])
            seen[r] = True
            dets = []
            for j in order[start:stop].tolist():
                x, y, w, h = xywh[j]
                box = Box(self.labels[label[j]], x, y, x + w, y + h, w, h)
                dets.append(Detection(box, score[j]))
            yield Prediction(self.data_row_ids[r], tuple(dets))
        for r in np.flatnonzero(~seen).tolist():
            yield Prediction(self.data_row_ids[r], ())


@dataclass(frozen=True)
class KnownRows:
    """What the ground truth says exists: rows (any split), which of them are evaluated, classes."""

    samples: Mapping[str, Sample]
    """All ground-truth rows by data row id, whatever their split."""
    evaluated: AbstractSet[str]
    """Data row ids being evaluated (the chosen splits)."""
    classes: AbstractSet[str] | None = None
    """Known class names; ``None`` accepts any."""
    global_keys: Mapping[str, str] = field(default_factory=dict)
    """Global key -> data row id."""
    unlabelled: AbstractSet[str] = frozenset()
    """Rows the export holds with no label (not ground truth, never evaluated); they are in
    ``samples`` too, so predictions on them are found by id, global key or image."""
    keep_unlabelled: bool = False
    """True: detections on unlabelled rows are kept (to publish them); False: left out as
    ``on_unlabelled_row``."""

    @classmethod
    def from_samples(
        cls,
        samples: list[Sample],
        evaluated: AbstractSet[str],
        classes: AbstractSet[str] | None = None,
        *,
        unlabelled: Sequence[Sample] = (),
        keep_unlabelled: bool = False,
    ) -> KnownRows:
        every = [*samples, *unlabelled]
        return cls(
            samples={s.data_row_id: s for s in every},
            evaluated=evaluated,
            classes=classes,
            global_keys={s.global_key: s.data_row_id for s in every if s.global_key},
            unlabelled=frozenset(s.data_row_id for s in unlabelled),
            keep_unlabelled=keep_unlabelled,
        )


@dataclass(frozen=True)
class PredictionsRead:
    """What a prediction reader returns: the detections, and what it left out or doubts."""

    table: DetectionTable
    ignored: tuple[Rejection, ...]
    """Detections (or lines) left out, with reason and line number."""
    warnings: tuple[Rejection, ...]
    """Detections kept but worth a look (e.g. no confidence, read as 1.0)."""
    failed_rows: frozenset[str] = frozenset()
    """Rows the model could not predict on (a failed Vertex instance): leave them out of the
    metrics; each is also in ``ignored`` as ``prediction_failed``."""


class DetectionTableBuilder:
    """Collects detections one at a time; what cannot be evaluated becomes a ``Rejection``."""

    def __init__(self, known: KnownRows | None = None) -> None:
        self._known = known
        self._row_index: dict[str, int] = {}
        self._label_index: dict[str, int] = {}
        self._row: list[int] = []
        self._label: list[int] = []
        self._x: list[float] = []
        self._y: list[float] = []
        self._w: list[float] = []
        self._h: list[float] = []
        self._score: list[float] = []
        self.rejections: list[Rejection] = []
        """Detections left out, and why."""
        self.warnings: list[Rejection] = []
        """Detections kept, with a remark."""
        self.failed_rows: set[str] = set()
        """Rows the model could not predict on."""

    @property
    def known(self) -> KnownRows | None:
        return self._known

    def resolve_row(
        self, line: int | None, data_row_id: str | None, global_key: str | None = None
    ) -> str | None:
        """The data row id a prediction refers to, or ``None`` (with a rejection) if unusable."""
        known = self._known
        if data_row_id is None and global_key is not None:
            data_row_id = known.global_keys.get(global_key) if known else None
            if data_row_id is None:
                self.reject(
                    Reason.UNKNOWN_DATA_ROW, line, None, f"unknown global key {global_key!r}"
                )
                return None
        if data_row_id is None:
            self.reject(Reason.MISSING_DATA_ROW, line, None, "no dataRow id or globalKey")
            return None
        if known is not None:
            if data_row_id in known.unlabelled:
                if known.keep_unlabelled:
                    return data_row_id
                detail = f"data row {data_row_id} has no label: its predictions are not scored"
                self.reject(Reason.ON_UNLABELLED_ROW, line, data_row_id, detail)
                return None
            if data_row_id not in known.samples:
                self.reject(
                    Reason.UNKNOWN_DATA_ROW, line, data_row_id, f"unknown data row {data_row_id}"
                )
                return None
            if data_row_id not in known.evaluated:
                split = known.samples[data_row_id].split.value
                self.reject(
                    Reason.ROW_NOT_IN_EVALUATED_SPLITS,
                    line,
                    data_row_id,
                    f"data row {data_row_id} is in split {split}",
                )
                return None
        return data_row_id

    def reject(
        self, reason: Reason, line: int | None, data_row_id: str | None, detail: str
    ) -> None:
        self.rejections.append(Rejection(reason.value, line, data_row_id, detail))

    def fail(self, line: int | None, data_row_id: str, detail: str) -> None:
        """Record a row the model could not predict on (``prediction_failed``)."""
        self.failed_rows.add(data_row_id)
        self.reject(Reason.PREDICTION_FAILED, line, data_row_id, detail)

    def warn(self, reason: Reason, line: int | None, data_row_id: str | None, detail: str) -> None:
        self.warnings.append(Rejection(reason.value, line, data_row_id, detail))

    def add_xywh(
        self,
        line: int | None,
        data_row_id: str,
        label: str,
        xywh: tuple[float, float, float, float],
        score: float,
    ) -> bool:
        """Add one detection of a resolved row (``xywh``: pixel left, top, width, height as the
        source gave them); ``False`` (with a rejection) if its class is unknown."""
        known = self._known
        if known is not None and known.classes is not None and label not in known.classes:
            self.reject(
                Reason.UNKNOWN_CLASS,
                line,
                data_row_id,
                f"class {label!r} is not in the ground truth",
            )
            return False
        r = self._row_index.setdefault(data_row_id, len(self._row_index))
        k = self._label_index.setdefault(label, len(self._label_index))
        self._row.append(r)
        self._label.append(k)
        x, y, w, h = xywh
        self._x.append(x)
        self._y.append(y)
        self._w.append(w)
        self._h.append(h)
        self._score.append(score)
        return True

    def extend_xywh(
        self,
        data_row_ids: list[str],
        labels: list[str],
        x: list[float],
        y: list[float],
        w: list[float],
        h: list[float],
        scores: list[float],
    ) -> None:
        """Add many detections already checked (resolved rows, known classes), in order; boxes
        as in `add_xywh`."""
        rows, names = self._row_index, self._label_index
        self._row.extend([rows.setdefault(r, len(rows)) for r in data_row_ids])
        self._label.extend([names.setdefault(n, len(names)) for n in labels])
        self._x.extend(x)
        self._y.extend(y)
        self._w.extend(w)
        self._h.extend(h)
        self._score.extend(scores)

    def known_class(self, line: int | None, data_row_id: str, label: str) -> bool:
        """``False`` (with a rejection) when ``label`` is not a known class."""
        known = self._known
        if known is not None and known.classes is not None and label not in known.classes:
            detail = f"class {label!r} is not in the ground truth"
            self.reject(Reason.UNKNOWN_CLASS, line, data_row_id, detail)
            return False
        return True

    def add_empty_row(self, data_row_id: str) -> None:
        """Record that a row was predicted on and has no detections."""
        self._row_index.setdefault(data_row_id, len(self._row_index))

    def result(self) -> PredictionsRead:
        return PredictionsRead(
            self.build(),
            tuple(self.rejections),
            tuple(self.warnings),
            frozenset(self.failed_rows),
        )

    def build(self) -> DetectionTable:
        xywh = np.stack(
            [np.asarray(c, dtype=np.float64) for c in (self._x, self._y, self._w, self._h)],
            axis=1,
        ).reshape(-1, 4)
        return DetectionTable(
            data_row_ids=tuple(self._row_index),
            labels=tuple(self._label_index),
            row=np.asarray(self._row, dtype=np.int64),
            label=np.asarray(self._label, dtype=np.int64),
            xywh=xywh,
            score=np.asarray(self._score, dtype=np.float64),
        )
