"""Batch prediction of one run (or pool) on Vertex AI.

The job is submitted once (handle first, then the run-id label, then create), looked at once per
call (``Pending`` while it runs), and its output files parsed back into Predictions in pixels of
the original images, with a Rejection for every row it could not predict. A job of an earlier
attempt that failed, was cancelled or expired is not re-attached: the retry submits a new one.

What differs between models is a `BatchFormat`: the instance line, the output line parser, the
job's options and handles. ``AUTOML_BATCH`` is AutoML's; ``vmt.backends.vertex_custom.models``
has our serving container's."""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from vmt.backends.gcs import run_prefix, upload_file
from vmt.backends.vertex.calls import (
    create_or_find,
    fetch_current,
    find_by_run_label,
    poll_delay,
    run_labels,
    vertex_backoff,
    vertex_call,
    vertex_cancel,
)
from vmt.backends.vertex.clients import VertexClients
from vmt.config import Settings
from vmt.domain import Prediction, Rejection, Sample
from vmt.durable_files import atomic_writer
from vmt.errors import BackendError, RunCancelled
from vmt.formats.image_header import EXTENSIONS
from vmt.formats.image_uri import GcsPath
from vmt.formats.vertex_predictions import VertexInstanceFailed, parse_prediction_line
from vmt.pipeline.protocols import Pending, Predicted, RunContext
from vmt.reasons import Reason

log = logging.getLogger("vmt")

H_BATCH_JOB = "vertex.batch_prediction_job"
H_FAILED_JOB = "vertex.failed_batch_prediction_job"
"""The run's last batch job whose failure was reported: the next attempt submits a new one."""

# JobState values (google.cloud.aiplatform_v1.JobState)
_SUCCEEDED, _FAILED, _CANCELLED, _EXPIRED, _PARTIALLY_SUCCEEDED = 4, 5, 7, 9, 11
_TERMINAL = {_SUCCEEDED, _FAILED, _CANCELLED, _EXPIRED, _PARTIALLY_SUCCEEDED}
_ENDED_BADLY = {_FAILED, 6, _CANCELLED, _EXPIRED}
"""A job in one of these states (6: CANCELLING) is never re-attached: a retry submits anew."""
_MIME_BY_EXTENSION = {ext: mime for mime, ext in EXTENSIONS.items()}


@dataclass(frozen=True)
class BatchFormat:
    """How a batch job on one kind of model is asked and read."""

    handle: str
    """The run's handle of its job."""
    failed_handle: str
    """The handle of its last job whose failure was reported."""
    folder: str
    """Under the run's prefix: ``instances.jsonl`` and the job's ``output/``."""
    unsendable: Callable[[Sample], str | None]
    """Why a sample cannot be sent to the job (None: it can)."""
    instance: Callable[[Sample], dict[str, Any]]
    """A sample -> its line of the job's input JSONL."""
    parse_line: Callable[[bytes, Mapping[str, tuple[int, int]]], Prediction]
    """One output line, image sizes by location (as the samples give them, 0 when unknown)
    -> the Prediction of the location it names.
    Raises ``VertexInstanceFailed`` for an instance that was not predicted, ValueError for a
    line that cannot be read."""
    job_options: Callable[[Settings], dict[str, Any]]
    """Further ``BatchPredictionJob`` fields (model parameters, machines)."""


def _automl_unsendable(sample: Sample) -> str | None:
    if not sample.image_uri.startswith("gs://") or not sample.width or not sample.height:
        return "no staged image or image size: not sent to batch prediction"
    return None


def _automl_instance(sample: Sample) -> dict[str, Any]:
    mime = sample.mime_type or _MIME_BY_EXTENSION.get(
        "." + sample.image_uri.rsplit(".", 1)[-1].lower(), "image/jpeg"
    )
    return {"content": sample.image_uri, "mimeType": mime}


def _automl_options(settings: Settings) -> dict[str, Any]:
    return {
        "model_parameters": {
            "confidenceThreshold": settings.vertex_confidence_threshold,
            "maxPredictions": settings.vertex_max_predictions,
        }
    }


AUTOML_BATCH = BatchFormat(
    handle=H_BATCH_JOB,
    failed_handle=H_FAILED_JOB,
    folder="batch",
    unsendable=_automl_unsendable,
    instance=_automl_instance,
    parse_line=parse_prediction_line,
    job_options=_automl_options,
)


@dataclass
class VertexBatchPrediction:
    settings: Settings
    clients: VertexClients
    storage: Any
    format: BatchFormat = AUTOML_BATCH

    def predict(
        self, ctx: RunContext, model: str, samples: Sequence[Sample]
    ) -> Predicted | Pending:
        """Submit (once) and look at the batch job of ``samples``: ``Pending`` while it runs,
        then every sample's prediction or the reason it has none. Rows the model cannot be
        asked about (``BatchFormat.unsendable``) are never sent (a Rejection each)."""
        by_uri: dict[str, list[str]] = defaultdict(list)
        sizes: dict[str, tuple[int, int]] = {}
        usable: list[Sample] = []
        unsent: list[Rejection] = []
        for sample in samples:
            why = self.format.unsendable(sample)
            if why is not None:
                unsent.append(
                    Rejection(Reason.PREDICTION_FAILED, sample.line, sample.data_row_id, why)
                )
                continue
            by_uri[sample.image_uri].append(sample.data_row_id)
            sizes[sample.image_uri] = (sample.width or 0, sample.height or 0)
            usable.append(sample)
        if not usable:
            ctx.event("vertex batch prediction skipped: no staged images", rows=len(unsent))
            return Predicted(unsent)
        job = self._find_or_submit(ctx, model, usable)
        current = fetch_current(
            self.settings,
            lambda: self.clients.job.get_batch_prediction_job(name=job),
            describe="poll Vertex batch prediction",
        )
        state = int(current.state)
        if state not in _TERMINAL:
            delay = poll_delay(self.settings, current.create_time)
            return Pending(delay, f"Vertex batch prediction {current.state.name}")
        ctx.event("vertex batch prediction finished", state=current.state.name, job=job)
        if state == _CANCELLED:
            raise RunCancelled(f"Vertex batch prediction {job} was cancelled")
        if state not in (_SUCCEEDED, _PARTIALLY_SUCCEEDED):
            ctx.set_handle(self.format.failed_handle, job)
            message = current.error.message or current.state.name
            raise BackendError(f"Vertex batch prediction failed: {message}")
        directory = str(current.output_info.gcs_output_directory)
        if not directory:
            raise BackendError(f"Vertex batch prediction {job} reports no output directory")
        return Predicted(itertools.chain(unsent, self._read_outputs(ctx, directory, by_uri, sizes)))

    def _find(self, ctx: RunContext) -> str | None:
        """The run's job: the recorded one (looked at by the caller, so its failure is
        reported once), else one found by the run's label that did not end badly."""
        recorded = ctx.get_handle(self.format.handle)
        if recorded is not None and recorded != ctx.get_handle(self.format.failed_handle):
            return recorded
        return find_by_run_label(
            ctx,
            lambda request: self.clients.job.list_batch_prediction_jobs(request=request),
            parent=self.clients.parent,
            handle=self.format.handle,
            what="batch prediction job",
            backoff=vertex_backoff(self.settings),
            ended_badly=lambda job: int(job.state) in _ENDED_BADLY,
            get_resource=lambda name: self.clients.job.get_batch_prediction_job(name=name),
        )

    def _find_or_submit(self, ctx: RunContext, model: str, samples: Sequence[Sample]) -> str:
        job = self._find(ctx)
        if job is not None:
            return job
        from google.cloud import aiplatform_v1

        bucket = str(self.settings.gcs_bucket)
        base = f"gs://{bucket}/{run_prefix(self.settings, ctx.run_id)}/{self.format.folder}"
        instances = ctx.workdir / "vertex_instances.jsonl"
        _write_instances(instances, samples, self.format.instance)
        upload_file(
            self.storage,
            instances,
            f"{base}/instances.jsonl",
            content_type="application/jsonl",
            deadline_s=self.settings.vertex_retry_deadline_s,
        )
        request = aiplatform_v1.BatchPredictionJob(
            display_name=f"vmt-{ctx.run_id}"[:128],
            model=model,
            input_config=aiplatform_v1.BatchPredictionJob.InputConfig(
                instances_format="jsonl",
                gcs_source=aiplatform_v1.GcsSource(uris=[f"{base}/instances.jsonl"]),
            ),
            output_config=aiplatform_v1.BatchPredictionJob.OutputConfig(
                predictions_format="jsonl",
                gcs_destination=aiplatform_v1.GcsDestination(output_uri_prefix=f"{base}/output"),
            ),
            labels=run_labels(ctx.run_id),
            **self.format.job_options(self.settings),
        )
        created = create_or_find(
            lambda: self.clients.job.create_batch_prediction_job(
                parent=self.clients.parent, batch_prediction_job=request
            ),
            lambda: self._find(ctx),
            describe="create Vertex batch prediction job",
            backoff=vertex_backoff(self.settings),
        )
        if isinstance(created, str):
            return created  # found by its label: recorded by _find
        job = str(created.name)
        ctx.set_handle(self.format.handle, job)
        ctx.event("vertex batch prediction submitted", job=job, images=len(samples))
        return job

    def _read_outputs(
        self,
        ctx: RunContext,
        directory: str,
        by_uri: dict[str, list[str]],
        sizes: dict[str, tuple[int, int]],
    ) -> Iterator[Prediction | Rejection]:
        where = GcsPath.parse(directory.rstrip("/") + "/")
        blobs = vertex_call(
            lambda: list(self.storage.list_blobs(where.bucket, prefix=where.name)),
            describe="list batch prediction outputs",
            backoff=vertex_backoff(self.settings),
        )
        predicted = 0
        bad_lines = 0
        failed: dict[str, str] = {}
        answered: set[str] = set()
        for blob in sorted(blobs, key=lambda b: str(b.name)):
            base = str(blob.name).rsplit("/", 1)[-1]
            if not base.endswith(".jsonl") or not base.startswith(("predictions", "errors")):
                continue
            for line in _blob_lines(blob):
                try:
                    parsed = self.format.parse_line(line, sizes)
                except VertexInstanceFailed as exc:
                    for row_id in by_uri.get(exc.uri, ()):
                        failed.setdefault(row_id, f"{base}: {exc}")
                    continue
                except ValueError as exc:
                    bad_lines += 1
                    log.warning("bad batch prediction line in %s: %s", base, exc)
                    continue
                for row_id in by_uri.get(parsed.data_row_id, ()):
                    if row_id in answered:
                        continue
                    answered.add(row_id)
                    predicted += 1
                    yield Prediction(row_id, parsed.detections)
        for row_id, detail in failed.items():
            if row_id not in answered:
                answered.add(row_id)
                yield Rejection(Reason.PREDICTION_FAILED, None, row_id, detail[:300])
        for row_ids in by_uri.values():
            for row_id in row_ids:
                if row_id not in answered:
                    failed[row_id] = "the batch prediction job's output has no line for it"
                    yield Rejection(Reason.PREDICTION_FAILED, None, row_id, failed[row_id])
        if failed:
            log.warning(
                "%d images failed in batch prediction, e.g. %s",
                len(failed),
                next(iter(failed.values())),
            )
        ctx.event(
            "vertex predictions read",
            predicted=predicted,
            failed_images=len(failed),
            bad_lines=bad_lines,
            errors=[detail[:300] for detail in list(failed.values())[:5]],
        )

    def cancel(self, ctx: RunContext) -> None:
        job = ctx.get_handle(self.format.handle)
        if job is None:
            return
        if vertex_cancel(
            lambda: self.clients.job.cancel_batch_prediction_job(name=job),
            describe="cancel Vertex batch prediction",
            backoff=vertex_backoff(self.settings),
        ):
            ctx.event("vertex batch prediction cancel requested", job=job)


def _write_instances(
    path: Path, samples: Sequence[Sample], instance: Callable[[Sample], dict[str, Any]]
) -> None:
    with atomic_writer(path) as out:
        for sample in samples:
            out.write(orjson.dumps(instance(sample)) + b"\n")


def _blob_lines(blob: Any) -> Iterator[bytes]:
    with blob.open("rb", chunk_size=4 * 1024 * 1024) as reader:
        for line in reader:
            stripped = line.strip()
            if stripped:
                yield stripped
