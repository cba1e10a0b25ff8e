"""The Vertex AI Pipelines orchestrator wired from settings: ``pipeline_jobs(settings)`` gives
the ``PipelineJobs`` that the CLI (``vmt run --orchestrator vertex-pipelines``, ``vmt pipeline
submit``, ``vmt runs``, ``vmt cancel``) and the stateless service submit and read runs with."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from vmt.backends.vertex.pipeline_jobs import PipelineJobs
from vmt.config import Settings
from vmt.errors import ConfigError

from .steps import step_settings_json

ORCHESTRATORS = ("local", "vertex-pipelines")

_compiled: dict[str, Path] = {}
_lock = threading.Lock()


def pipeline_template(settings: Settings) -> str:
    """``VMT_PIPELINE_TEMPLATE`` (a compiled pipeline: path, gs:// or Artifact Registry URI),
    else the pipeline compiled (once per process) for ``VMT_PIPELINE_IMAGE``."""
    if settings.pipeline_template:
        return settings.pipeline_template
    image = settings.pipeline_image
    if not image:
        raise ConfigError(
            "missing setting: VMT_PIPELINE_IMAGE (the vmt image the pipeline steps run in) "
            "or VMT_PIPELINE_TEMPLATE (a pipeline compiled with `vmt pipeline compile`)"
        )
    with _lock:
        if image not in _compiled:
            from .kfp_pipeline import compile_pipeline

            folder = Path(tempfile.mkdtemp(prefix="vmt-pipeline-"))
            _compiled[image] = compile_pipeline(folder / "pipeline.yaml", image=image)
        return str(_compiled[image])


def pipeline_jobs(settings: Settings) -> PipelineJobs:
    """Pipeline jobs in the configured project and region, submitting the configured pipeline
    with the settings its steps need."""
    return PipelineJobs(
        settings,
        template=lambda: pipeline_template(settings),
        step_settings=step_settings_json(settings),
    )
