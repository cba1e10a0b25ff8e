"""The six stages as functions: explicit inputs (backends, context, files) and outputs.

Each stage reads the files its predecessors left in the run folder, writes its own (atomically,
see ``artifacts``), and returns a small JSON-able summary the runner stores as the stage's
outputs. Stages are idempotent: a stage that crashed half-way is simply run again.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import orjson

from vmt.domain import Prediction, Rejection, Sample, Split
from vmt.durable_files import atomic_path, atomic_writer
from vmt.errors import InputError
from vmt.formats.image_uri import local_path, redact_urls
from vmt.pipeline import artifacts
from vmt.pipeline.artifacts import SampleFile
from vmt.pipeline.protocols import (
    MODEL_HANDLE,
    Backends,
    Pending,
    RunContext,
    Sink,
    Source,
    Stage,
    Trainer,
)
from vmt.pipeline.results import (
    EvaluateResult,
    ExportResult,
    MetricsSummary,
    PredictionFailure,
    PredictResult,
    PrepareResult,
    PublishResult,
    StageResult,
    TrainResult,
)

R = TypeVar("R", bound=StageResult)


class EarlierResult(Protocol):
    """Reads the recorded result of an earlier stage of the run (``TrainResult`` for predict)."""

    def __call__(self, kind: type[R]) -> R: ...


if TYPE_CHECKING:
    from vmt.formats.export_options import ExportOptions

CHECK_EVERY = 200
"""Rows between progress reports and cancellation checks in streaming loops."""

EVALUATED_SPLITS = (Split.VALIDATION, Split.TEST)


@dataclass(frozen=True, slots=True)
class RunPaths:
    """Where each stage's files live in a run folder."""

    root: Path

    @property
    def export(self) -> Path:
        return self.root / artifacts.EXPORT_FILE

    @property
    def samples(self) -> Path:
        return self.root / artifacts.SAMPLES_FILE

    @property
    def rejections(self) -> Path:
        return self.root / artifacts.REJECTIONS_FILE

    @property
    def predictions(self) -> Path:
        return self.root / artifacts.PREDICTIONS_FILE

    @property
    def labelbox_predictions(self) -> Path:
        return self.root / artifacts.LABELBOX_PREDICTIONS_FILE

    @property
    def metrics(self) -> Path:
        return self.root / artifacts.METRICS_FILE

    @property
    def report(self) -> Path:
        return self.root / artifacts.REPORT_FILE

    @property
    def row_metrics(self) -> Path:
        return self.root / artifacts.ROW_METRICS_FILE


# --- export ------------------------------------------------------------------------------
def export_stage(source: Source, ctx: RunContext, *, dest: Path) -> ExportResult:
    """Source rows -> ``dest`` (Labelbox export NDJSON)."""
    with atomic_path(dest) as tmp:
        source.export(ctx, tmp)
    return ExportResult(export_bytes=dest.stat().st_size)


# --- prepare -----------------------------------------------------------------------------
def prepare_stage(
    trainer: Trainer,
    ctx: RunContext,
    *,
    export: Path,
    locate_image: Callable[[str], str],
    samples_out: Path,
    rejections_out: Path,
    unassigned: str | None = "skip",
) -> PrepareResult:
    """Parse the export, let the trainer make each row usable, and keep what survives.

    Rejections (reason, line, data row id, detail) from parsing and from the trainer go to
    ``rejections_out``; rows without a split follow ``unassigned`` (the source's policy; None:
    the one `vmt.formats.split_policy.choose_unassigned` picks from the export, an event says
    when it assigns splits). Fails with an ``InputError`` that says why when no training row
    is left.
    """
    from vmt.formats.export_options import ExportOptions
    from vmt.formats.json_records import read_records
    from vmt.formats.split_policy import choose_unassigned

    choice = choose_unassigned(unassigned, read_records(export))
    if choice.note is not None:
        ctx.event(choice.note)
    outputs = prepare_rows(
        trainer,
        ctx,
        export=export,
        options=ExportOptions(
            require_dimensions=False, require_boxes=False, unassigned=choice.policy
        ),
        locate_image=locate_image,
        samples_out=samples_out,
        rejections_out=rejections_out,
    )
    if outputs.by_split.get(Split.TRAINING.value, 0) == 0:
        raise InputError(_no_training_rows_message(outputs))
    if not any(outputs.by_split.get(split.value) for split in EVALUATED_SPLITS):
        ctx.event("no validation or test rows: nothing to predict on or evaluate")
    return outputs


def prepare_rows(
    trainer: Trainer,
    ctx: RunContext,
    *,
    export: Path,
    options: ExportOptions,
    locate_image: Callable[[str], str],
    samples_out: Path,
    rejections_out: Path,
) -> PrepareResult:
    """Export rows -> parsed samples (image location from ``locate_image``, the source's) ->
    ``trainer.prepare`` -> ``samples_out``; every rejection (parser's or trainer's) ->
    ``rejections_out``. Streams: constant memory. Returns counts."""
    from vmt.formats.labelbox_export import read_samples

    by_reason: collections.Counter[str] = collections.Counter()
    by_split: collections.Counter[str] = collections.Counter()
    boxes = 0
    parsed = 0

    with (
        artifacts.rejection_writer(rejections_out) as rejected,
        artifacts.sample_writer(samples_out) as kept,
    ):

        def reject(rejection: Rejection) -> None:
            rejected.write(dataclasses.replace(rejection, detail=redact_urls(rejection.detail)))
            by_reason[rejection.reason] += 1

        def parsed_samples() -> Iterator[Sample]:
            nonlocal parsed
            for item in read_samples(export, options):
                parsed += 1
                if parsed % CHECK_EVERY == 0:
                    ctx.check_cancelled()
                    ctx.progress(parsed, None, what="rows")
                if isinstance(item, Rejection):
                    reject(item)
                    continue
                uri = locate_image(item.image_uri)
                if uri != item.image_uri:
                    item = _with_uri(item, uri)
                yield item

        for item in trainer.prepare(ctx, parsed_samples()):
            if isinstance(item, Rejection):
                reject(item)
            else:
                kept.write(item)
                by_split[item.split.value] += 1
                boxes += len(item.boxes)
        ctx.progress(parsed, parsed, what="rows")
    # Both files are complete here, so the rejections stay readable if the caller fails.
    return PrepareResult(
        rows=parsed,
        samples=kept.count,
        rejected=rejected.count,
        boxes=boxes,
        by_split=dict(by_split),
        rejections_by_reason=dict(by_reason.most_common()),
    )


def _with_uri(sample: Sample, uri: str) -> Sample:
    return dataclasses.replace(sample, image_uri=uri)


def _no_training_rows_message(outputs: PrepareResult) -> str:
    if outputs.rows == 0:
        return "the export has no data rows"
    reasons = outputs.reasons_text()
    if outputs.samples == 0:
        return f"every row was rejected: {outputs.rows} rows, none usable ({reasons})"
    return (
        f"no usable training rows: {outputs.samples} of {outputs.rows} rows usable, none in "
        f"the training split" + (f" ({reasons} rejected)" if reasons else "")
    )


# --- train -------------------------------------------------------------------------------
def train_stage(trainer: Trainer, ctx: RunContext, *, samples: SampleFile) -> TrainResult | Pending:
    """Launch or poll the training; once finished, the model reference is recorded as the
    run's ``model`` handle and returned with what the training cost and the trainer's own
    evaluation."""
    answer = trainer.train(ctx, samples)
    if isinstance(answer, Pending):
        return answer
    ctx.set_handle(MODEL_HANDLE, answer.model)
    ctx.event("training finished", model=answer.model, cost_usd=answer.cost_usd, **answer.summary)
    return TrainResult(
        model=answer.model,
        cost_usd=answer.cost_usd,
        trainer_evaluation=dict(answer.evaluation) if answer.evaluation is not None else None,
    )


# --- predict -----------------------------------------------------------------------------
def predict_stage(
    trainer: Trainer,
    ctx: RunContext,
    *,
    model: str,
    samples: SampleFile,
    predictions_out: Path,
    labelbox_out: Path,
) -> PredictResult | Pending:
    """Predict on every VALIDATION and TEST row; write our JSONL and the Labelbox upload."""
    evaluated = samples.only(*EVALUATED_SPLITS)
    answer = trainer.predict(ctx, model, evaluated)
    if isinstance(answer, Pending):
        return answer
    written = record_predictions(
        answer.rows, ctx, predictions_out, total=sum(1 for _ in evaluated), what="rows"
    )
    upload_rows = write_labelbox_predictions(
        artifacts.read_predictions(predictions_out), labelbox_out, uuid_scope=ctx.run_id
    )
    if written.failures:
        ctx.event(
            "rows the trainer could not predict",
            rows=len(written.failures),
            examples=[f.detail[:200] for f in written.failures[:5]],
        )
    return PredictResult(
        predicted_rows=written.predicted,
        detections=written.detections,
        upload_rows=upload_rows,
        failed_rows=len(written.failures),
        failures=tuple(written.failures),
    )


@dataclass(frozen=True, slots=True)
class RecordedPredictions:
    predicted: int
    detections: int
    failures: list[PredictionFailure]


def record_predictions(
    rows: Iterable[Prediction | Rejection],
    ctx: RunContext,
    predictions_out: Path,
    *,
    total: int | None,
    what: str,
) -> RecordedPredictions:
    """THE prediction loop (a run's predict stage, a pool): predictions -> ``predictions_out``
    (our JSONL), rejections -> failures; progress and cancellation every ``CHECK_EVERY`` rows."""
    detections = 0
    failures: list[PredictionFailure] = []
    seen = 0
    with artifacts.prediction_writer(predictions_out) as out:
        for row in rows:
            seen += 1
            if isinstance(row, Rejection):
                detail = redact_urls(row.detail or row.reason)
                failures.append(PredictionFailure(data_row_id=row.data_row_id or "", detail=detail))
            else:
                out.write(row)
                detections += len(row.detections)
            if seen % CHECK_EVERY == 0:
                ctx.check_cancelled()
                ctx.progress(seen, total, what=what)
    ctx.progress(seen, total if total is not None else seen, what=what)
    return RecordedPredictions(out.count, detections, failures)


def write_labelbox_predictions(
    predictions: Iterable[Prediction], dest: Path, *, uuid_scope: str
) -> int:
    """The Labelbox upload NDJSON (with confidence). Annotation uuids derive from
    ``uuid_scope`` (the run id), so a rewritten file names the same annotations."""
    import uuid

    from vmt.formats.labelbox_predictions import prediction_rows
    from vmt.name_uuid import name_uuids

    uuid_of = name_uuids(uuid.uuid5(uuid.NAMESPACE_URL, f"vmt-run:{uuid_scope}"))

    def uuid_for(data_row_id: str, index: int) -> str:
        return uuid_of(f"{data_row_id}/{index}")

    rows = 0
    with atomic_writer(dest) as out:
        for prediction in predictions:
            for row in prediction_rows(prediction, uuid_for=uuid_for):
                out.write(orjson.dumps(row))
                out.write(b"\n")
                rows += 1
    return rows


# --- evaluate ----------------------------------------------------------------------------
def evaluate_stage(
    ctx: RunContext,
    *,
    trainer_name: str,
    samples: SampleFile,
    predictions: Path,
    metrics_out: Path,
    report_out: Path,
    row_metrics_out: Path,
    trained: TrainResult | None = None,
    predicted: PredictResult | None = None,
) -> EvaluateResult:
    """Metrics over the VALIDATION and TEST rows: metrics.json, report.html, row metrics;
    the summary adds the TEST split alone when it has rows. Rows the trainer could not predict
    (``predicted.failures``) are left out; the trainer's own evaluation
    (``trained.trainer_evaluation``) is kept in metrics.json as ``<trainer_name>_evaluation``."""
    from vmt.evaluation import evaluate
    from vmt.evaluation.outputs import write_evaluation_outputs
    from vmt.evaluation.result import summarize_rejections
    from vmt.formats.evaluation_inputs import evaluation_ground_truth

    # The ground truth of `vmt evaluate` on the same export: every labelled box, not only the
    # boxes Vertex's filters left for training.
    truth = evaluation_ground_truth(
        ctx.workdir / artifacts.EXPORT_FILE, samples.only(*EVALUATED_SPLITS), EVALUATED_SPLITS
    )
    evaluated = truth.rows
    if truth.unlabelled:
        ctx.event("rows with no label are not ground truth: left out", rows=len(truth.unlabelled))
    failed = {f.data_row_id for f in predicted.failures} if predicted is not None else set()
    if failed:
        evaluated = [s for s in evaluated if s.data_row_id not in failed]
        ctx.event(
            "rows the trainer could not predict are left out of the metrics", rows=len(failed)
        )
    scored, on_unlabelled = truth.leave_out_unlabelled(artifacts.read_predictions(predictions))
    evaluation = evaluate(evaluated, scored).with_rejections(on_unlabelled)
    metrics = evaluation.to_json()
    if truth.unlabelled:
        metrics["ground_truth_left_out"] = summarize_rejections(truth.unlabelled)
    if trained is not None and trained.trainer_evaluation is not None:
        metrics[f"{trainer_name}_evaluation"] = trained.trainer_evaluation
    local_images = {s.data_row_id: path for s in evaluated if (path := local_path(s.image_uri))}
    write_evaluation_outputs(
        evaluation,
        metrics,
        metrics_out=metrics_out,
        report_out=report_out,
        row_metrics_out=row_metrics_out,
        image_path=local_images.get,
        namespace=ctx.run_id,
    )

    test: MetricsSummary | None = None
    test_rows = [s for s in evaluated if s.split is Split.TEST]
    if test_rows:
        test_eval = evaluate(test_rows, artifacts.read_predictions(predictions))
        test = MetricsSummary.of_metrics(test_eval.to_json())
    return EvaluateResult(
        all=MetricsSummary.of_metrics(metrics), test=test, prediction_failures=len(failed) or None
    )


# --- publish -----------------------------------------------------------------------------
def publish_stage(sink: Sink, ctx: RunContext, *, paths: RunPaths) -> PublishResult:
    sink.publish(
        ctx,
        predictions=paths.labelbox_predictions,
        metrics=paths.metrics,
        row_metrics=paths.row_metrics if paths.row_metrics.exists() else None,
        report=paths.report if paths.report.exists() else None,
    )
    return PublishResult()


# --- one stage, whichever orchestrator runs it ---------------------------------------------
def run_stage(
    stage: Stage,
    backends: Backends,
    ctx: RunContext,
    *,
    paths: RunPaths,
    earlier: EarlierResult,
) -> StageResult | Pending:
    """Run ``stage`` of the run in ``paths`` with ``backends``: what the stage driver calls
    for either orchestrator (one implementation, two orchestrators). ``earlier(TrainResult)``
    reads a finished stage's recorded result. Train and predict answer ``Pending`` while the
    trainer's job runs."""
    samples = SampleFile(paths.samples)
    if stage is Stage.EXPORT:
        return export_stage(backends.source, ctx, dest=paths.export)
    if stage is Stage.PREPARE:
        return prepare_stage(
            backends.trainer,
            ctx,
            export=paths.export,
            locate_image=backends.source.locate_image,
            samples_out=paths.samples,
            rejections_out=paths.rejections,
            unassigned=backends.source.unassigned,
        )
    if stage is Stage.TRAIN:
        return train_stage(backends.trainer, ctx, samples=samples)
    if stage is Stage.PREDICT:
        return predict_stage(
            backends.trainer,
            ctx,
            model=earlier(TrainResult).model,
            samples=samples,
            predictions_out=paths.predictions,
            labelbox_out=paths.labelbox_predictions,
        )
    if stage is Stage.EVALUATE:
        return evaluate_stage(
            ctx,
            trainer_name=backends.trainer.name,
            samples=samples,
            predictions=paths.predictions,
            metrics_out=paths.metrics,
            report_out=paths.report,
            row_metrics_out=paths.row_metrics,
            trained=earlier(TrainResult),
            predicted=earlier(PredictResult),
        )
    return publish_stage(backends.sink, ctx, paths=paths)
