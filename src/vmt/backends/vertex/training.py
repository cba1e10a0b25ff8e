"""The AutoML image object detection training of one run: dataset, import, training pipeline.

Every resource is looked up before it is created (the run's handle first, then by the run-id
label, for a crash between "create" and "persist"), and recorded with ``ctx.set_handle`` the
moment it exists. Training is created without blocking and then polled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from vmt.backends.vertex.calls import (
    create_or_find,
    find_by_run_label,
    poll_until_done,
    run_labels,
    vertex_backoff,
    vertex_call,
    vertex_cancel,
)
from vmt.backends.vertex.clients import VertexClients
from vmt.config import Settings
from vmt.durable_files import write_atomic
from vmt.errors import BackendError, RunCancelled
from vmt.pipeline.protocols import RunContext, TrainingPlanned
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
H_IMPORTED = "vertex.dataset_imported"
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
    sleep: Callable[[float], None] | None = None

    # -- dataset --

    def ensure_dataset(self, ctx: RunContext, import_uri: str) -> str:
        """The run's image dataset, created and imported from ``import_uri`` once."""
        dataset = self.find_dataset(ctx)
        if dataset is None:
            dataset = self._create_dataset(ctx)
        if ctx.get_handle(H_IMPORTED) != "1":
            self._import(ctx, dataset, import_uri)
        return dataset

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

    def _import(self, ctx: RunContext, dataset: str, import_uri: str) -> None:
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
        done = poll_until_done(
            ctx,
            self.settings,
            lambda: self.clients.dataset.get_operation(request={"name": name}),
            lambda op: bool(op.done),
            describe="poll Vertex import",
            sleep=self.sleep,
        )
        if done.HasField("error") and done.error.code:
            raise BackendError(f"Vertex dataset import failed: {done.error.message}")
        ctx.set_handle(H_IMPORTED, "1")
        ctx.event("vertex import done", dataset=dataset)

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

    def wait(self, ctx: RunContext, pipeline: str) -> str:
        """Poll the training pipeline to its end; return the model's resource name."""
        last_state: list[int] = []

        def on_poll(current: Any) -> None:
            state = int(current.state)
            if not last_state or last_state[-1] != state:
                last_state.append(state)
                ctx.event("vertex training state", state=current.state.name)

        done = poll_until_done(
            ctx,
            self.settings,
            lambda: self.clients.pipeline.get_training_pipeline(name=pipeline),
            lambda current: int(current.state) in _TERMINAL,
            describe="poll Vertex training",
            on_poll=on_poll,
            delay_handle="vertex.training_poll_delay",
            sleep=self.sleep,
        )
        metadata = _as_dict(done.training_task_metadata)
        cost = metadata.get("costMilliNodeHours")
        stop = metadata.get("successfulStopReason")
        ctx.event(
            "vertex training finished",
            state=done.state.name,
            cost_milli_node_hours=cost,
            stop_reason=stop,
        )
        if cost is not None:
            ctx.set_handle("vertex.cost_milli_node_hours", str(cost))
        if stop is not None:
            ctx.set_handle("vertex.stop_reason", str(stop))
        state = int(done.state)
        if state == _CANCELLED:
            raise RunCancelled(f"Vertex training {pipeline} was cancelled")
        if state == _FAILED:
            message = done.error.message or "no message from Vertex"
            raise BackendError(f"Vertex training failed: {message}")
        model = str(done.model_to_upload.name)
        if not model:
            raise BackendError(f"Vertex training {pipeline} succeeded without a model")
        ctx.set_handle(H_MODEL, model)
        return model

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
