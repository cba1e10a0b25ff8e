"""The Vertex AI AutoML trainer as the registry sees it (``vmt.backends.registry``).

No Google SDK is imported here: the trainer class is named by its import path.
"""

from __future__ import annotations

from vmt.backends.registry import (
    ModelTypeOffer,
    ResourceLink,
    TrainerSpec,
    settings_options,
)
from vmt.backends.vertex.console import vertex_console_url
from vmt.config import Settings
from vmt.vertex_cost import cost_usd

VertexOptions = settings_options(
    "VertexOptions",
    "vertex_dry_run",
    "vertex_model_type",
    "vertex_budget_milli_node_hours",
    "vertex_confidence_threshold",
    "vertex_max_predictions",
)


def _unavailable(settings: Settings) -> str | None:
    if settings.gcp_project and settings.gcs_bucket:
        return None
    return "VMT_GCP_PROJECT and VMT_GCS_BUCKET are not both set"


def _budget_cost(settings: Settings) -> float:
    """The most the training may cost: its whole node-hour budget, in USD."""
    return cost_usd(settings.vertex_budget_milli_node_hours)


SPEC = TrainerSpec(
    name="vertex",
    title="Vertex AI AutoML",
    model_types=(
        ModelTypeOffer(
            "vertex_automl_object_detection", "Vertex AI AutoML image object detection (cloud)"
        ),
    ),
    builder="vmt.backends.vertex.trainer:VertexTrainer",
    options=VertexOptions,
    extra="vertex",
    unavailable=_unavailable,
    estimate_cost=_budget_cost,
    resources=(
        ResourceLink("vertex.dataset", "Vertex dataset", "train", "Dataset"),
        ResourceLink(
            "vertex.training_pipeline", "Vertex training pipeline", "train", "TrainingPipeline"
        ),
        ResourceLink("vertex.model", "Vertex model", "train", "Model"),
        ResourceLink(
            "vertex.batch_prediction_job",
            "Vertex batch prediction",
            "predict",
            "BatchPredictionJob",
        ),
    ),
    console_url=vertex_console_url,
    in_pipeline_image=True,
)
