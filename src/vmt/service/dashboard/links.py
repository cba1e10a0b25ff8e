"""Links from a run to where its resources live: the Labelbox model run, the Vertex console."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

LABELBOX_APP = "https://app.labelbox.com"
CONSOLE = "https://console.cloud.google.com/vertex-ai"

_RESOURCE = re.compile(
    r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/(?P<kind>[A-Za-z]+)/(?P<id>[^/]+)$"
)
_CONSOLE_PATHS = {
    "datasets": "locations/{location}/datasets/{id}",
    "trainingPipelines": "locations/{location}/training/{id}",
    "models": "models/locations/{location}/models/{id}",
    "batchPredictionJobs": "locations/{location}/batch-predictions/{id}",
}
_LABELS = {
    "vertex.dataset": "Vertex dataset",
    "vertex.training_pipeline": "Vertex training pipeline",
    "vertex.model": "Vertex model",
    "vertex.batch_prediction_job": "Vertex batch prediction",
}


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str
    text: str


def vertex_console_url(resource: str) -> str | None:
    """``projects/P/locations/L/trainingPipelines/ID`` -> its Cloud console page; None for a
    name of another shape."""
    match = _RESOURCE.match(resource)
    if match is None or match["kind"] not in _CONSOLE_PATHS:
        return None
    parts = {k: quote(v, safe="") for k, v in match.groupdict().items()}
    path = _CONSOLE_PATHS[match["kind"]].format(**parts)
    return f"{CONSOLE}/{path}?project={parts['project']}"


def run_links(source: Mapping[str, object], handles: Mapping[str, str]) -> list[Link]:
    """The Labelbox model run (when the run came from one) and each Vertex resource it made."""
    links: list[Link] = []
    model_run = source.get("model_run_id")
    if isinstance(model_run, str) and model_run:
        model = source.get("model_id")
        if isinstance(model, str) and model:
            url = f"{LABELBOX_APP}/models/{quote(model, safe='')}/{quote(model_run, safe='')}"
        else:
            url = f"{LABELBOX_APP}/models"
        links.append(Link("Labelbox model run", url, model_run))
    for key, label in _LABELS.items():
        value = handles.get(key)
        console = vertex_console_url(value) if value else None
        if value and console:
            links.append(Link(label, console, value.rsplit("/", 1)[-1]))
    return links
