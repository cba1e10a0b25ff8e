"""Runs on Vertex AI Pipelines: submit, attach, read and cancel ``aiplatform.PipelineJob``s.

One pipeline job per Labelbox model run, made certain by Vertex AI itself: the job id is derived
from the model run id (``job_id_for``) and creating a job whose id exists fails with
ALREADY_EXISTS, which ``submit`` answers by attaching to that job (FORMATS.md 2.4). No state is
kept here: runs are listed and read back from Vertex by their labels.

The real ``google.cloud.aiplatform.PipelineJob`` does the work; its client is built per instance
(endpoint, REST transport, credentials from ``Settings``) instead of through the SDK's global
``aiplatform.init``.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vmt.config import Settings
from vmt.errors import BackendError, InputError, NotFoundError
from vmt.pipeline.run_config import RunConfig

JOB_ID_PATTERN = re.compile(r"[a-z][-a-z0-9]{0,127}")
"""Vertex AI's rule for a pipeline job id."""

LABEL_APP = "vmt-app"
LABEL_MODEL_RUN = "vmt-model-run"
LABEL_TRAINER = "vmt-trainer"
APP = "vmt"

_STATES = {
    0: "UNSPECIFIED",
    1: "QUEUED",
    2: "PENDING",
    3: "RUNNING",
    4: "SUCCEEDED",
    5: "FAILED",
    6: "CANCELLING",
    7: "CANCELLED",
    8: "PAUSED",
}
RUN_STATES = {
    "UNSPECIFIED": "pending",
    "QUEUED": "pending",
    "PENDING": "pending",
    "RUNNING": "running",
    "PAUSED": "running",
    "CANCELLING": "running",
    "SUCCEEDED": "complete",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}
"""Pipeline job states as the run states ``vmt runs`` shows for local runs."""

_TASK_STATES = {
    0: "UNSPECIFIED",
    1: "PENDING",
    2: "RUNNING",
    3: "SUCCEEDED",
    4: "CANCEL_PENDING",
    5: "CANCELLING",
    6: "CANCELLED",
    7: "FAILED",
    8: "SKIPPED",
    9: "NOT_TRIGGERED",
}


def job_id_for(model_run_id: str, *, attempt: int = 1) -> str:
    """The pipeline job id of a model run: ``vmt-<model run id>`` (lower case, other characters
    as ``-``), plus ``-<hash>`` when that lost information or was too long, plus ``-a<N>`` for
    attempts after the first. Always matches ``JOB_ID_PATTERN``; equal inputs, equal ids."""
    if not model_run_id.strip():
        raise InputError("a model run id is required")
    if attempt < 1:
        raise InputError(f"attempt must be >= 1, got {attempt}")
    suffix = f"-a{attempt}" if attempt > 1 else ""
    clean = re.sub(r"[^a-z0-9-]", "-", model_run_id.lower())
    job_id = f"vmt-{clean}"
    if clean != model_run_id or len(job_id) + len(suffix) > 128:
        digest = hashlib.sha256(model_run_id.encode()).hexdigest()[:12]
        job_id = f"{job_id[: 128 - len(suffix) - 13]}-{digest}"
    job_id += suffix
    assert JOB_ID_PATTERN.fullmatch(job_id), job_id
    return job_id


def label_value(text: str) -> str:
    """``text`` as a Google label value (<= 63 of ``[a-z0-9_-]``; a hash keeps it unique)."""
    clean = re.sub(r"[^a-z0-9_-]", "-", text.lower())
    if clean == text and len(clean) <= 63:
        return clean
    return f"{clean[:50]}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass(frozen=True, slots=True)
class PipelineTask:
    """One task (step) of a pipeline job, from the job's task details."""

    name: str
    state: str
    started: datetime | None = None
    ended: datetime | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PipelineRun:
    """A vmt run on Vertex AI Pipelines, read from its pipeline job."""

    job_id: str
    resource_name: str
    job_state: str
    """Vertex's state without the prefix: QUEUED, PENDING, RUNNING, SUCCEEDED, FAILED, ..."""
    created: datetime | None
    updated: datetime | None
    labels: dict[str, str]
    parameters: dict[str, Any]
    error: str | None = None
    tasks: tuple[PipelineTask, ...] = field(default=())

    @property
    def state(self) -> str:
        """pending, running, complete, failed or cancelled (as local runs)."""
        return RUN_STATES.get(self.job_state, "pending")

    @property
    def stage(self) -> str | None:
        """The stage running now, or the one that failed, or the last one that ran."""
        stages = [t for t in self.tasks if t.name in _STAGE_NAMES]
        for wanted in ("RUNNING", "FAILED"):
            for task in stages:
                if task.state == wanted:
                    return task.name
        done = [t for t in stages if t.state == "SUCCEEDED"]
        return max(done, key=lambda t: _STAGE_NAMES.index(t.name)).name if done else None

    @property
    def model_run_id(self) -> str | None:
        config = self.parameters.get("run_config")
        if isinstance(config, str):
            options = RunConfig.from_json(config).source.options
            value = options.get("model_run_id")
            return str(value) if value is not None else None
        return self.labels.get(LABEL_MODEL_RUN)


_STAGE_NAMES = ("export", "prepare", "train", "predict", "evaluate", "publish")


class PipelineJobs:
    """Submit and read vmt pipeline jobs in ``settings``' project and region.

    ``template`` gives the compiled pipeline (path or URI; called on each submit) and
    ``step_settings`` the settings JSON its steps get (no secrets): the orchestrator provides
    both (``vmt.orchestrators.vertex_pipelines.pipeline_jobs``).
    """

    def __init__(
        self, settings: Settings, *, template: Callable[[], str], step_settings: str
    ) -> None:
        settings.require("gcp_project", "gcp_region")
        self.settings = settings
        self._template = template
        self._step_settings = step_settings
        self._job_class: Any = None
        self._lock = threading.Lock()

    # --- where things go -----------------------------------------------------------------
    @property
    def parent(self) -> str:
        return f"projects/{self.settings.gcp_project}/locations/{self.settings.gcp_region}"

    def pipeline_root(self) -> str:
        """``VMT_PIPELINE_ROOT``, else ``gs://<bucket>/<prefix>/pipelines``."""
        if self.settings.pipeline_root:
            return self.settings.pipeline_root.rstrip("/")
        self.settings.require("gcs_bucket")
        return f"gs://{self.settings.gcs_bucket}/{self.settings.gcs_prefix}/pipelines"

    def run_dir(self, job_id: str) -> str:
        return f"{self.pipeline_root()}/{job_id}/run"

    # --- commands ------------------------------------------------------------------------
    def submit(
        self, config: RunConfig, *, model_run_id: str, attempt: int = 1
    ) -> tuple[PipelineRun, bool]:
        """Create the pipeline job of ``model_run_id`` (``config`` runs in it) and return it
        with True, or attach to the job that already has its id and return it with False."""
        from google.api_core import exceptions

        job_id = job_id_for(model_run_id, attempt=attempt)
        labels = {
            LABEL_APP: APP,
            LABEL_MODEL_RUN: label_value(model_run_id),
            LABEL_TRAINER: label_value(config.trainer.kind),
        }
        job = self._class()(
            display_name=f"vmt {model_run_id}"[:128],
            template_path=self._template(),
            job_id=job_id,
            pipeline_root=self.pipeline_root(),
            parameter_values={
                "run_id": job_id,
                "run_config": config.to_json(),
                "settings": self._step_settings,
                "run_dir": self.run_dir(job_id),
            },
            enable_caching=False,
            labels=labels,
            project=self.settings.gcp_project,
            location=self.settings.gcp_region,
            credentials=self._credentials(),
        )
        try:
            job.create(service_account=self.settings.pipeline_service_account)
        except exceptions.Conflict:  # ALREADY_EXISTS: this model run's job was created before
            return self.get(job_id), False
        except (exceptions.GoogleAPICallError, OSError) as exc:
            raise _backend_error(f"creating pipeline job {job_id}", exc) from exc
        return _run_of(job.gca_resource), True

    def get(self, job_id: str) -> PipelineRun:
        """The run of pipeline job ``job_id`` (raises ``NotFoundError``)."""
        from google.api_core import exceptions

        if not JOB_ID_PATTERN.fullmatch(job_id):
            raise NotFoundError(f"no pipeline job {job_id!r} (not a pipeline job id)")
        try:
            job = self._class().get(
                resource_name=f"{self.parent}/pipelineJobs/{job_id}",
                project=self.settings.gcp_project,
                location=self.settings.gcp_region,
                credentials=self._credentials(),
            )
        except exceptions.NotFound as exc:
            raise NotFoundError(f"no pipeline job {job_id} in {self.parent}") from exc
        except (exceptions.GoogleAPICallError, OSError) as exc:
            raise _backend_error(f"reading pipeline job {job_id}", exc) from exc
        return _run_of(job.gca_resource)

    def list(self, *, limit: int = 50, model_run_id: str | None = None) -> list[PipelineRun]:
        """vmt's pipeline jobs (label ``vmt-app=vmt``), newest first."""
        from google.api_core import exceptions

        wanted = f'labels.{LABEL_APP}="{APP}"'
        if model_run_id is not None:
            wanted += f' AND labels.{LABEL_MODEL_RUN}="{label_value(model_run_id)}"'
        try:
            jobs = self._class().list(
                filter=wanted,
                order_by="create_time desc",
                project=self.settings.gcp_project,
                location=self.settings.gcp_region,
                credentials=self._credentials(),
            )
        except (exceptions.GoogleAPICallError, OSError) as exc:
            raise _backend_error("listing pipeline jobs", exc) from exc
        runs = [_run_of(job.gca_resource) for job in jobs]
        runs.sort(key=lambda r: (r.created or datetime.min.astimezone(), r.job_id), reverse=True)
        return runs[:limit]

    def cancel(self, job_id: str) -> PipelineRun:
        """Ask Vertex AI to cancel the job (its steps are stopped; the exit handler then marks
        the model run FAILED). Raises ``InputError`` when the job has already ended."""
        from google.api_core import exceptions

        run = self.get(job_id)
        if run.state in ("complete", "failed", "cancelled"):
            raise InputError(f"run {job_id} is already {run.state}; nothing to cancel")
        try:
            self._class().get(
                resource_name=run.resource_name,
                project=self.settings.gcp_project,
                location=self.settings.gcp_region,
                credentials=self._credentials(),
            ).cancel()
        except (exceptions.GoogleAPICallError, OSError) as exc:
            raise _backend_error(f"cancelling pipeline job {job_id}", exc) from exc
        return self.get(job_id)

    # --- the SDK ---------------------------------------------------------------------------
    def _credentials(self) -> Any:
        from vmt.backends.gcp_credentials import gcp_credentials

        return gcp_credentials(self.settings)

    def _class(self) -> Any:
        """``aiplatform.PipelineJob`` whose client uses this instance's endpoint over REST."""
        with self._lock:
            if self._job_class is None:
                self._job_class = _pipeline_job_class(self.settings)
            return self._job_class


def _pipeline_job_class(settings: Settings) -> Any:
    from google.api_core.client_options import ClientOptions
    from google.api_core.gapic_v1.client_info import ClientInfo
    from google.cloud import aiplatform

    endpoint = settings.vertex_api_endpoint or f"{settings.gcp_region}-aiplatform.googleapis.com"

    # experiment_loggable_schemas=(): register nothing in the SDK's experiment registry.
    class VmtPipelineJob(aiplatform.PipelineJob, experiment_loggable_schemas=()):  # type: ignore[arg-type]
        @classmethod
        def _instantiate_client(
            cls,
            location: str | None = None,
            credentials: Any = None,
            appended_user_agent: list[str] | None = None,
        ) -> Any:
            return cls.client_class(
                client_options=ClientOptions(api_endpoint=endpoint),
                client_info=ClientInfo(user_agent="vmt"),  # type: ignore[no-untyped-call]
                credentials=credentials,
                transport="rest",
            )

        def create(self, *, service_account: str | None) -> None:
            """``PipelineJob.submit()`` without its bucket set-up (which looks the project up
            in Resource Manager with default credentials and may create a bucket): the
            pipeline root's bucket is the deployment's own (docs/deploy.md)."""
            if service_account:
                self._gca_resource.service_account = service_account
            self._gca_resource = self.api_client.create_pipeline_job(
                parent=self._parent, pipeline_job=self._gca_resource, pipeline_job_id=self.job_id
            )

    return VmtPipelineJob


def _run_of(resource: Any) -> PipelineRun:
    from google.protobuf import json_format

    job_id = resource.name.rsplit("/", 1)[-1]
    error = resource.error.message if resource.error and resource.error.message else None
    runtime = json_format.MessageToDict(resource._pb.runtime_config)
    parameters: dict[str, Any] = runtime.get("parameterValues", {})
    tasks = tuple(
        PipelineTask(
            name=task.task_name,
            state=_TASK_STATES.get(int(task.state), str(task.state)),
            started=_time(task.start_time),
            ended=_time(task.end_time),
            error=task.error.message if task.error and task.error.message else None,
        )
        for task in resource.job_detail.task_details
    )
    return PipelineRun(
        job_id=job_id,
        resource_name=resource.name,
        job_state=_STATES.get(int(resource.state), str(resource.state)),
        created=_time(resource.create_time),
        updated=_time(resource.update_time),
        labels=dict(resource.labels),
        parameters=parameters,
        error=error,
        tasks=tasks,
    )


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return value if isinstance(value, datetime) else None


def _backend_error(what: str, exc: Any) -> BackendError:
    """A Vertex error as ours: 429/5xx and network errors are retryable."""
    code = getattr(exc, "code", None)
    retryable = isinstance(exc, OSError) or code in (429, 500, 502, 503, 504)
    return BackendError(
        f"{what} failed: {exc.message if hasattr(exc, 'message') else exc}", retryable=retryable
    )
