"""A custom-trained model in the Vertex AI Model Registry, and batch prediction on it.

``upload_model`` registers the model folder a CustomJob wrote (``model.pt`` + ``model.json``)
with our image as its serving container (``vmt serve-model``: `vmt.backends.vertex_custom.
serving`); launch then poll: the upload's long-running operation is recorded as a handle and
looked at once per call (``Pending`` until done). One model per run across crashes: the model's
id comes from the run id (a second upload is refused as ALREADY_EXISTS) and it carries the
run-id label (found again by it).

``CustomBatchPrediction`` is AutoML's batch machinery (`vmt.backends.vertex.batch`) with our
container's instance line (``{"image_uri": "gs://..."}``), output parser
(`vmt.formats.detector_predictions`), machines and handles.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from vmt.backends.vertex.batch import BatchFormat, VertexBatchPrediction
from vmt.backends.vertex.calls import (
    RUN_LABEL,
    fetch_current,
    find_by_run_label,
    run_label_value,
    run_labels,
    vertex_backoff,
    vertex_call,
)
from vmt.backends.vertex.clients import VertexClients
from vmt.config import Settings
from vmt.domain import Sample
from vmt.errors import BackendError, ConfigError, NotFoundError
from vmt.formats.detector_predictions import PredictParameters, instance_of, parse_detector_line
from vmt.formats.image_uri import scheme
from vmt.pipeline.protocols import Pending, RunContext, Trained

log = logging.getLogger("vmt")

H_MODEL = "vertex_custom.model"
H_UPLOAD = "vertex_custom.model_upload"
"""The upload's long-running operation."""
H_BATCH_JOB = "vertex_custom.batch_prediction_job"
H_FAILED_JOB = "vertex_custom.failed_batch_prediction_job"

SERVING_COMMAND = ("vmt", "serve-model")
HEALTH_ROUTE = "/health"
PREDICT_ROUTE = "/predict"
SERVING_PORT = 8080

_MODEL_ID_MAX = 63


def model_id(run_id: str) -> str:
    """The Model Registry id of ``run_id``'s model: ``vmt-<run label>`` (lowercase letters,
    digits, ``-``, ``_``; starts with a letter; <= 63 characters)."""
    label = run_label_value(run_id)
    if len(label) + 4 <= _MODEL_ID_MAX:
        return f"vmt-{label}"
    digest = hashlib.sha1(run_id.encode()).hexdigest()[:8]
    return f"vmt-{label[: _MODEL_ID_MAX - 13].rstrip('-_')}-{digest}"


def serving_image(settings: Settings) -> str:
    """Our image, which serves the model. Raises ``ConfigError`` when it is not configured."""
    if not settings.pipeline_image:
        raise ConfigError(
            "VMT_PIPELINE_IMAGE (our container image, which serves custom-trained models) "
            "is not set"
        )
    return settings.pipeline_image


def model_request(ctx: RunContext, settings: Settings, artifact_uri: str, image_uri: str) -> Any:
    """The ``Model`` uploaded for the run: the model folder, our container serving it under
    the run's outbound policy (``VMT_OUTBOUND_ALLOW*`` in its environment when set)."""
    from google.cloud import aiplatform_v1

    env = []
    if settings.outbound_allow:
        env.append(
            aiplatform_v1.EnvVar(name="VMT_OUTBOUND_ALLOW", value=",".join(settings.outbound_allow))
        )
    if settings.outbound_allow_http:
        env.append(aiplatform_v1.EnvVar(name="VMT_OUTBOUND_ALLOW_HTTP", value="true"))

    return aiplatform_v1.Model(
        display_name=f"vmt-{ctx.run_id}"[:128],
        description="vmt detector (custom training)",
        artifact_uri=artifact_uri,
        container_spec=aiplatform_v1.ModelContainerSpec(
            image_uri=image_uri,
            command=list(SERVING_COMMAND),
            ports=[aiplatform_v1.Port(container_port=SERVING_PORT)],
            predict_route=PREDICT_ROUTE,
            health_route=HEALTH_ROUTE,
            env=env,
        ),
        labels=run_labels(ctx.run_id),
    )


def upload_model(
    ctx: RunContext,
    settings: Settings,
    clients: VertexClients,
    artifact_uri: str,
    *,
    image_uri: str | None = None,
) -> Trained | Pending:
    """Register ``artifact_uri`` (the model folder, ``gs://``) once for the run, then look at
    the upload: ``Pending`` while it runs, ``Trained`` with the model's resource name (also
    the handle ``vertex_custom.model``) once it is done. Raises ``BackendError`` when Vertex
    reports the upload failed, ``ConfigError`` when our image is not configured."""
    recorded = ctx.get_handle(H_MODEL)
    if recorded is not None:
        return _trained(recorded, artifact_uri)
    operation = ctx.get_handle(H_UPLOAD)
    if operation is None:
        found = _find_model(ctx, settings, clients)
        if found is not None:
            return _trained(found, artifact_uri)
        started = _start_upload(ctx, settings, clients, artifact_uri, image_uri)
        if started is None:
            return Pending(settings.vertex_poll_seconds, "Vertex model upload (another attempt's)")
        operation = started
    name = operation
    current = fetch_current(
        settings,
        lambda: clients.model.get_operation(request={"name": name}),
        describe="poll Vertex model upload",
    )
    if not current.done:
        return Pending(settings.vertex_poll_seconds, "Vertex model upload")
    if current.HasField("error") and current.error.code:
        raise BackendError(f"Vertex model upload failed: {current.error.message}")
    from google.cloud import aiplatform_v1

    response = aiplatform_v1.UploadModelResponse.deserialize(current.response.value)
    model = str(response.model)
    if not model:
        raise BackendError(f"Vertex model upload {operation} finished without a model")
    ctx.set_handle(H_MODEL, model)
    ctx.event("vertex model uploaded", model=model, artifact_uri=artifact_uri)
    return _trained(model, artifact_uri)


def _trained(model: str, artifact_uri: str) -> Trained:
    return Trained(model=model, summary={"artifact_uri": artifact_uri})


def _find_model(ctx: RunContext, settings: Settings, clients: VertexClients) -> str | None:
    """The run's model: recorded, carrying the run's label, or under the run's model id."""
    found = find_by_run_label(
        ctx,
        lambda request: clients.model.list_models(request=request),
        parent=clients.parent,
        handle=H_MODEL,
        what="model",
        backoff=vertex_backoff(settings),
    )
    if found is not None:
        return found
    name = f"{clients.parent}/models/{model_id(ctx.run_id)}"
    try:
        model = vertex_call(
            lambda: clients.model.get_model(name=name),
            describe="get Vertex model",
            backoff=vertex_backoff(settings),
        )
    except NotFoundError:
        return None
    if dict(model.labels).get(RUN_LABEL) != run_label_value(ctx.run_id):
        raise BackendError(f"Vertex model {name} exists but belongs to another run")
    ctx.set_handle(H_MODEL, name)
    return name


def _start_upload(
    ctx: RunContext,
    settings: Settings,
    clients: VertexClients,
    artifact_uri: str,
    image_uri: str | None,
) -> str | None:
    """Start the upload and record its operation; None when Vertex says the run's model is
    already being uploaded (an attempt whose answer was lost)."""
    from google.api_core import exceptions as api_exceptions
    from google.cloud import aiplatform_v1

    request = aiplatform_v1.UploadModelRequest(
        parent=clients.parent,
        model=model_request(ctx, settings, artifact_uri, image_uri or serving_image(settings)),
        model_id=model_id(ctx.run_id),
    )
    try:
        operation = vertex_call(
            lambda: clients.model.upload_model(request=request),
            describe="upload Vertex model",
            backoff=vertex_backoff(settings),
        )
    except BackendError as exc:
        if isinstance(exc.__cause__, api_exceptions.AlreadyExists | api_exceptions.Conflict):
            log.info("the model of run %s is already being uploaded", ctx.run_id)
            return None
        raise
    name = str(operation.operation.name)
    ctx.set_handle(H_UPLOAD, name)
    ctx.event("vertex model upload started", operation=name, artifact_uri=artifact_uri)
    return name


def _custom_unsendable(sample: Sample) -> str | None:
    """Our container reads its images itself: Cloud Storage or the web, not local files."""
    if scheme(sample.image_uri) in ("gs", "https", "http"):
        return None
    return "a local image: batch prediction reads gs:// and https images only, not sent"


def _custom_instance(sample: Sample) -> dict[str, Any]:
    return instance_of(sample.image_uri)


def _custom_options(settings: Settings) -> dict[str, Any]:
    from google.cloud import aiplatform_v1

    machine = aiplatform_v1.MachineSpec(machine_type=settings.vertex_custom_predict_machine_type)
    accelerator = settings.vertex_custom_predict_accelerator_type
    if accelerator and settings.vertex_custom_predict_accelerator_count:
        known = aiplatform_v1.AcceleratorType.__members__
        if accelerator not in known:
            raise ConfigError(
                f"VMT_VERTEX_CUSTOM_PREDICT_ACCELERATOR_TYPE: {accelerator!r} is not a Vertex "
                "accelerator type (e.g. NVIDIA_TESLA_T4)"
            )
        machine.accelerator_type = known[accelerator]
        machine.accelerator_count = settings.vertex_custom_predict_accelerator_count
    parameters = PredictParameters(
        settings.vertex_confidence_threshold, settings.vertex_max_predictions
    )
    return {
        "model_parameters": parameters.to_json(),
        "dedicated_resources": aiplatform_v1.BatchDedicatedResources(
            machine_spec=machine,
            starting_replica_count=1,
            max_replica_count=settings.vertex_custom_predict_replicas,
        ),
        "manual_batch_tuning_parameters": aiplatform_v1.ManualBatchTuningParameters(
            batch_size=settings.vertex_custom_predict_batch_size
        ),
    }


CUSTOM_BATCH = BatchFormat(  # handles, folder, which rows, their lines, output parser, options
    H_BATCH_JOB,
    H_FAILED_JOB,
    "custom_batch",
    _custom_unsendable,
    _custom_instance,
    parse_detector_line,
    _custom_options,
)


@dataclass
class CustomBatchPrediction(VertexBatchPrediction):
    """``predict(ctx, model, samples) -> Predicted | Pending`` and ``cancel(ctx)`` of a batch
    prediction job on a model ``upload_model`` registered."""

    format: BatchFormat = CUSTOM_BATCH
