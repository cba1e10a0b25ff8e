"""Vertex AI clients built from settings, one set per trainer (no global ``aiplatform.init``).

The GAPIC ``aiplatform_v1`` service clients are used directly: they take the endpoint,
transport and credentials per instance, so a test points one trainer at a local fake over
plain HTTP (``vertex_api_endpoint="http://127.0.0.1:PORT"``) without touching process state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vmt.config import Settings


@dataclass(frozen=True)
class VertexClients:
    project: str
    region: str
    dataset: Any
    pipeline: Any
    model: Any
    job: Any

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"


_RPC_PREFIXES = ("get_", "list_", "create_", "cancel_", "delete_", "import_", "export_")


class TimedClient:
    """A GAPIC client whose every RPC gets ``timeout=seconds`` unless the caller gives one.

    The REST transport's default is no timeout at all: an answer that never comes would hold
    the run (and its lease) forever instead of being retried."""

    def __init__(self, client: Any, seconds: float) -> None:
        self._client = client
        self._seconds = seconds

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not (callable(attribute) and name.startswith(_RPC_PREFIXES)):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", self._seconds)
            return attribute(*args, **kwargs)

        return call


def build_vertex_clients(settings: Settings) -> VertexClients:
    """Clients for the project/region in ``settings``. REST transport against
    ``{region}-aiplatform.googleapis.com`` unless ``vertex_api_endpoint`` overrides it."""
    settings.require("gcp_project", "gcp_region")
    from google.cloud import aiplatform_v1

    from vmt.backends.gcp_credentials import gcp_credentials

    credentials = gcp_credentials(settings)
    endpoint = settings.vertex_api_endpoint or f"{settings.gcp_region}-aiplatform.googleapis.com"
    options = {"api_endpoint": endpoint}

    def make(cls: Any) -> Any:
        client = cls(credentials=credentials, transport="rest", client_options=options)
        return TimedClient(client, settings.vertex_call_timeout_s)

    return VertexClients(
        project=str(settings.gcp_project),
        region=settings.gcp_region,
        dataset=make(aiplatform_v1.DatasetServiceClient),
        pipeline=make(aiplatform_v1.PipelineServiceClient),
        model=make(aiplatform_v1.ModelServiceClient),
        job=make(aiplatform_v1.JobServiceClient),
    )
