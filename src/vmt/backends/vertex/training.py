"""The AutoML image object detection training of one run: dataset, import, training pipeline.

Every resource is looked up before it is created (the run's handle first, then by the run-id
label, for a crash between "create" and "persist"), and recorded with ``ctx.set_handle`` the
moment it exists. Nothing waits: the import and the training are started, then looked at once
per call (``Pending`` until they end).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

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
from vmt.durable_files import write_atomic
from vmt.errors import BackendError, RunCancelled
from vmt.pipeline.protocols import Pending, RunContext, Trained, TrainingPlanned
from vmt.vertex_cost import cost_usd

log = logging.getLogger("vmt")

IMAGE_DATASET_SCHEMA = "gs://google-cloud-aiplatform/schema/dataset/metadata/image_1.0.0.yaml"
BOUNDING_BOX_IMPORT_SCHEMA = (
    "gs://google-cloud-aiplatform/schema/dataset/ioformat/image_bounding_box_io_format_1.0.0.yaml"
)
OBJECT_DETECTION_DEFINITION = (
    "gs://google-cloud-aiplatform/schema/trainingjob/definition/"
    "automl_image_object_detection_1.0.0.yaml"
)
ML_USE = "labels.aiplatform.googleapis.com/ml_use"

H_DATASET = "vertex.dataset"
H_IMPORT_OPERATION = "vertex.import_operation"
H_PIPELINE = "vertex.training_pipeline"
H_MODEL = "vertex.model"

# PipelineState values (google.cloud.aiplatform_v1.PipelineState)
_SUCCEEDED, _FAILED, _CANCELLED = 4, 5, 7
_TERMINAL = {_SUCCEEDED, _FAILED, _CANCELLED}


class DryRunFinished(TrainingPlanned):
    """``vertex_dry_run``: everything was done but launching the training."""


def max_cost_usd(budget_milli_node_hours: int) -> float:
    return cost_usd(budget_milli_node_hours)


@dataclass
class VertexTraining:
    settings: Settings
    clients: VertexClients

    # -- dataset --

    def ensure_dataset(self, ctx: RunContext) -> str:
        """The run's image dataset, created once."""
        dataset = self.find_dataset(ctx)
        return dataset if dataset is not None else self._create_dataset(ctx)

    def _create_dataset(self, ctx: RunContext) -> str:
        from google.cloud import aiplatform_v1

        dataset = aiplatform_v1.Dataset(
            display_name=f"vmt-{ctx.run_id}"[:128],
            metadata_schema_uri=IMAGE_DATASET_SCHEMA,
            labels=run_labels(ctx.run_id),
        )
        operation = create_or_find(
            lambda: self.clients.dataset.create_dataset(
                parent=self.clients.parent, dataset=dataset
            ),
            lambda: self.find_dataset(ctx),
            describe="create Vertex dataset",
            backoff=vertex_backoff(self.settings),
        )
        if isinstance(operation, str):
            return operation  # found by its label: recorded by find_dataset
        created = vertex_call(
            lambda: operation.result(timeout=600),
            describe="create dataset",
            backoff=vertex_backoff(self.settings),
        )
        name = str(created.name)
        ctx.set_handle(H_DATASET, name)
        log.info("created dataset %s", name)
        ctx.event("vertex dataset created", dataset=name)
        return name

    def find_dataset(self, ctx: RunContext) -> str | None:
        return find_by_run_label(
            ctx,
            lambda request: self.clients.dataset.list_datasets(request=request),
            parent=self.clients.parent,
            handle=H_DATASET,
            what="dataset",
            backoff=vertex_backoff(self.settings),
        )

    def import_data(self, ctx: RunContext, dataset: str, import_uri: str) -> Pending | None:
        """Start importing ``import_uri`` into ``dataset`` (once: the operation is a handle),
        then look at it: ``Pending`` while it runs, None once it is done. Raises
        ``BackendError`` when Vertex reports the import failed."""
        from google.cloud import aiplatform_v1

        op_name = ctx.get_handle(H_IMPORT_OPERATION)
        if op_name is None:
            config = aiplatform_v1.ImportDataConfig(
                gcs_source=aiplatform_v1.GcsSource(uris=[import_uri]),
                import_schema_uri=BOUNDING_BOX_IMPORT_SCHEMA,
            )
            operation = vertex_call(
                lambda: self.clients.dataset.import_data(name=dataset, import_configs=[config]),
                describe="import into Vertex dataset",
                backoff=vertex_backoff(self.settings),
            )
            op_name = str(operation.operation.name)
            ctx.set_handle(H_IMPORT_OPERATION, op_name)
            ctx.event("vertex import started", operation=op_name, source=import_uri)
        name = op_name
        current = fetch_current(
            self.settings,
            lambda: self.clients.dataset.get_operation(request={"name": name}),
            describe="poll Vertex import",
        )
        if not current.done:
            return Pending(self.settings.vertex_poll_seconds, "Vertex dataset import")
        if current.HasField("error") and current.error.code:
            raise BackendError(f"Vertex dataset import failed: {current.error.message}")
        return None

    # -- training pipeline --

    def pipeline_request(self, ctx: RunContext, dataset: str) -> Any:
        from google.cloud import aiplatform_v1

        dataset_id = dataset.rsplit("/", 1)[-1]
        return aiplatform_v1.TrainingPipeline(
            display_name=f"vmt-{ctx.run_id}"[:128],
            training_task_definition=OBJECT_DETECTION_DEFINITION,
            training_task_inputs={
                "modelType": self.settings.vertex_model_type,
                "budgetMilliNodeHours": self.settings.vertex_budget_milli_node_hours,
                "disableEarlyStopping": False,
            },
            input_data_config=aiplatform_v1.InputDataConfig(
                dataset_id=dataset_id,
                filter_split=aiplatform_v1.FilterSplit(
                    training_filter=f"{ML_USE}=training",
                    validation_filter=f"{ML_USE}=validation",
                    test_filter=f"{ML_USE}=test",
                ),
            ),
            model_to_upload=aiplatform_v1.Model(
                display_name=f"vmt-{ctx.run_id}"[:128], labels=run_labels(ctx.run_id)
            ),
            labels=run_labels(ctx.run_id),
        )

    def find_pipeline(self, ctx: RunContext) -> str | None:
        return find_by_run_label(
            ctx,
            lambda request: self.clients.pipeline.list_training_pipelines(request=request),
            parent=self.clients.parent,
            handle=H_PIPELINE,
            what="training pipeline",
            backoff=vertex_backoff(self.settings),
        )

    def launch(self, ctx: RunContext, dataset: str) -> str:
        """Create the training pipeline (never twice for a run) and return its name."""
        existing = self.find_pipeline(ctx)
        if existing is not None:
            return existing
        request = self.pipeline_request(ctx, dataset)
        budget = self.settings.vertex_budget_milli_node_hours
        cost = max_cost_usd(budget)
        summary = (
            f"Vertex AutoML training: {self.settings.vertex_model_type}, budget {budget:,} "
            f"milli node hours, maximum cost about {cost:,.2f} USD"
        )
        log.warning("%s", summary)
        ctx.event(
            "vertex training cost",
            model_type=self.settings.vertex_model_type,
            budget_milli_node_hours=budget,
            max_cost_usd=round(cost, 2),
        )
        request_path = ctx.workdir / "vertex_training_pipeline.json"
        write_atomic(request_path, type(request).to_json(request).encode())
        if self.settings.vertex_dry_run:
            raise DryRunFinished(
                f"dry run: stopped before launching training ({summary}); "
                f"request saved to {request_path}"
            )
        created = create_or_find(
            lambda: self.clients.pipeline.create_training_pipeline(
                parent=self.clients.parent, training_pipeline=request
            ),
            lambda: self.find_pipeline(ctx),
            describe="create Vertex training pipeline",
            backoff=vertex_backoff(self.settings),
        )
        if isinstance(created, str):
            return created  # found by its label: recorded by find_pipeline
        name = str(created.name)
        ctx.set_handle(H_PIPELINE, name)
        log.info("created training pipeline %s", name)
        ctx.event("vertex training launched", training_pipeline=name)
        return name

    def poll(self, ctx: RunContext, pipeline: str) -> Trained | Pending:
        """One look at the training pipeline: ``Pending`` while it runs; once it succeeded, the
        model with what it cost and Vertex's own evaluation. Raises ``RunCancelled`` or
        ``BackendError`` when it was cancelled or failed."""
        current = fetch_current(
            self.settings,
            lambda: self.clients.pipeline.get_training_pipeline(name=pipeline),
            describe="poll Vertex training",
        )
        state = int(current.state)
        if state not in _TERMINAL:
            delay = poll_delay(self.settings, current.create_time)
            return Pending(delay, f"Vertex training {current.state.name}")
        metadata = _as_dict(current.training_task_metadata)
        cost = metadata.get("costMilliNodeHours")
        stop = metadata.get("successfulStopReason")
        if state == _CANCELLED:
            raise RunCancelled(f"Vertex training {pipeline} was cancelled")
        if state == _FAILED:
            message = current.error.message or "no message from Vertex"
            raise BackendError(f"Vertex training failed: {message}")
        model = str(current.model_to_upload.name)
        if not model:
            raise BackendError(f"Vertex training {pipeline} succeeded without a model")
        ctx.set_handle(H_MODEL, model)
        return Trained(
            model=model,
            cost_usd=round(cost_usd(int(cost)), 2) if cost is not None else None,
            evaluation=self.model_evaluation(ctx, model),
            summary={"cost_milli_node_hours": cost, "stop_reason": stop},
        )

    def model_evaluation(self, ctx: RunContext, model: str) -> dict[str, Any] | None:
        """Vertex's own evaluation of ``model`` (its first model evaluation), None if it has
        none."""
        evaluations = vertex_call(
            lambda: list(self.clients.model.list_model_evaluations(parent=model)),
            describe="list Vertex model evaluations",
            backoff=vertex_backoff(self.settings),
        )
        if not evaluations:
            ctx.event("vertex model has no evaluation", model=model)
            return None
        first = evaluations[0]
        raw = type(first).to_dict(first, preserving_proto_field_name=False)
        metrics = raw.get("metrics") or {}
        if not isinstance(metrics, dict):
            metrics = json_format.MessageToDict(metrics)
        ctx.event(
            "vertex model evaluation read",
            evaluation=str(first.name),
            mean_average_precision=metrics.get("boundingBoxMeanAveragePrecision"),
        )
        return {
            "model": model,
            "evaluation": str(first.name),
            "metricsSchemaUri": str(first.metrics_schema_uri),
            "boundingBoxMeanAveragePrecision": metrics.get("boundingBoxMeanAveragePrecision"),
            "metrics": metrics,
        }

    def cancel(self, ctx: RunContext) -> None:
        pipeline = ctx.get_handle(H_PIPELINE)
        if pipeline is None or ctx.get_handle(H_MODEL) is not None:
            return
        if vertex_cancel(
            lambda: self.clients.pipeline.cancel_training_pipeline(name=pipeline),
            describe="cancel Vertex training",
            backoff=vertex_backoff(self.settings),
        ):
            ctx.event("vertex training cancel requested", training_pipeline=pipeline)
        else:
            log.info("training pipeline %s already finished", pipeline)


def _as_dict(value: Any) -> dict[str, Any]:
    """A ``google.protobuf.Value`` (or proto-plus map) as a plain dict ({} when unset)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    try:
        converted = json_format.MessageToDict(value)
    except (AttributeError, TypeError):
        converted = dict(value) if hasattr(value, "items") else {}
    return converted if isinstance(converted, dict) else {}
