"""What each stage returns and the runner stores: one frozen type per stage, JSON both ways.

The run store keeps a stage's result as the JSON object ``result.to_json()`` gives (the shape
older stores already hold, so existing runs read back unchanged); ``result_from_json`` rebuilds
the type. ``EvaluateResult.headline()`` is THE rule for a run's headline figures (the TEST split
when it has rows, else validation + test; mAP and AP50): the CLI, the service and the Labelbox
status metadata all read it from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from vmt.pipeline.protocols import Stage

Scalar = int | float | str | bool


class StageResult(BaseModel):
    """Base of the stage results: frozen; unknown keys of older stores ignored, missing counts
    read as 0."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    stage: ClassVar[Stage]

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored for the stage (field aliases as keys, unset figures left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The result back from ``to_json()``'s object. Raises ``pydantic.ValidationError``."""
        return cls.model_validate(dict(data))

    def brief(self) -> dict[str, Scalar]:
        """The scalar figures, for the "stage done" event and the stages table."""
        return {k: v for k, v in self.to_json().items() if isinstance(v, Scalar)}


class ExportResult(StageResult):
    stage: ClassVar[Stage] = Stage.EXPORT

    export_bytes: int = 0
    """Size of the run's export NDJSON in bytes."""


class PrepareResult(StageResult):
    stage: ClassVar[Stage] = Stage.PREPARE

    rows: int = 0
    """Data rows read from the export."""
    samples: int = 0
    """Rows kept (usable by the trainer)."""
    rejected: int = 0
    """Rows left out, each with a reason in ``rejections.jsonl``."""
    boxes: int = 0
    """Boxes on the kept rows."""
    by_split: dict[str, int] = Field(default_factory=dict)
    """Kept rows per split value (``training``, ``validation``, ``test``...)."""
    rejections_by_reason: dict[str, int] = Field(default_factory=dict)
    """Rejected rows per reason code, most frequent first."""

    def reasons_text(self) -> str:
        """``"3 image_missing, 1 malformed_json"`` (empty when nothing was rejected)."""
        return ", ".join(f"{n} {reason}" for reason, n in self.rejections_by_reason.items())


class TrainResult(StageResult):
    stage: ClassVar[Stage] = Stage.TRAIN

    model: str
    """The trained model's reference: a local path or a Vertex model resource name."""
    cost_usd: float | None = None
    """What the training cost, as the trainer reports it (None: unknown or free)."""
    trainer_evaluation: dict[str, Any] | None = None
    """The trainer's own evaluation of the model (Vertex's model evaluation), kept in
    ``metrics.json`` as ``<trainer>_evaluation``."""


class PredictionFailure(BaseModel):
    """A row the trainer could not predict, and why (the trainer's message)."""

    model_config = ConfigDict(frozen=True)

    data_row_id: str
    detail: str


class PredictResult(StageResult):
    stage: ClassVar[Stage] = Stage.PREDICT

    predicted_rows: int = 0
    detections: int = 0
    upload_rows: int = 0
    """Lines of the Labelbox prediction upload NDJSON."""
    failed_rows: int = 0
    """Rows the trainer could not predict (each in ``failures``)."""
    failures: tuple[PredictionFailure, ...] = ()
    """The rows the trainer could not predict: left out of the metrics."""


class MetricsSummary(BaseModel):
    """The headline figures of one ``metrics.json`` (COCO: mAP over IoU .50:.95, AP50, AP75)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    map: float | None = Field(default=None, alias="mAP")
    ap50: float | None = Field(default=None, alias="AP50")
    ap75: float | None = Field(default=None, alias="AP75")
    images: int | None = None
    ground_truth: int | None = None
    predictions: int | None = None

    @classmethod
    def of_metrics(cls, metrics: Mapping[str, Any]) -> MetricsSummary:
        """From a ``metrics.json`` document (``map``, ``map_50``, ``map_75``, ``counts``)."""
        counts = metrics.get("counts") or {}
        return cls.model_validate(
            {
                "mAP": metrics.get("map"),
                "AP50": metrics.get("map_50"),
                "AP75": metrics.get("map_75"),
                "images": counts.get("images"),
                "ground_truth": counts.get("ground_truth_boxes"),
                "predictions": counts.get("predictions"),
            }
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


HeadlineRows = Literal["test", "all"]


class Headline(BaseModel):
    """A run's headline figures and which rows they come from."""

    model_config = ConfigDict(frozen=True)

    rows: HeadlineRows
    """``test``: the TEST split alone; ``all``: validation + test rows."""
    map: float | None
    ap50: float | None
    ap75: float | None = None

    def as_metadata(self) -> dict[str, float]:
        """``{"mAP": ..., "AP50": ...}`` with only the figures that exist."""
        figures = {"mAP": self.map, "AP50": self.ap50}
        return {key: value for key, value in figures.items() if value is not None}


ROW_SET_NAMES: Mapping[str, str] = {"all": "validation + test", "test": "test"}


class EvaluateResult(StageResult):
    stage: ClassVar[Stage] = Stage.EVALUATE

    all: MetricsSummary = Field(default_factory=MetricsSummary)
    """Validation and test rows together."""
    test: MetricsSummary | None = None
    """The TEST split alone, when it has rows."""
    prediction_failures: int | None = None
    """Rows left out of the metrics because the trainer could not predict them (None: none)."""

    def headline(self) -> Headline:
        """THE headline: the TEST split when evaluated, else validation + test."""
        rows: HeadlineRows = "test" if self.test is not None else "all"
        figures = self.test if self.test is not None else self.all
        return Headline(rows=rows, map=figures.map, ap50=figures.ap50, ap75=figures.ap75)

    def row_sets(self) -> dict[str, MetricsSummary]:
        """Each evaluated set of rows by its key (``all``, then ``test`` when present)."""
        sets = {"all": self.all}
        if self.test is not None:
            sets["test"] = self.test
        return sets


class PublishResult(StageResult):
    stage: ClassVar[Stage] = Stage.PUBLISH


RESULT_TYPES: Mapping[Stage, type[StageResult]] = {
    cls.stage: cls
    for cls in (
        ExportResult,
        PrepareResult,
        TrainResult,
        PredictResult,
        EvaluateResult,
        PublishResult,
    )
}


def result_from_json(stage: Stage, data: Mapping[str, Any]) -> StageResult:
    """The typed result of ``stage`` from its stored JSON object."""
    return RESULT_TYPES[stage].from_json(data)


def evaluation_of(metrics: Mapping[str, Any]) -> EvaluateResult | None:
    """A run's stored metrics summary as a typed result; None before evaluation."""
    return EvaluateResult.from_json(metrics) if metrics else None


def headline_of(metrics: Mapping[str, Any]) -> Headline | None:
    """The headline of a run's stored metrics summary; None before evaluation."""
    evaluation = evaluation_of(metrics)
    return evaluation.headline() if evaluation is not None else None
