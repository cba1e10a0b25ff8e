"""Vertex AI resource names -> their pages in the Google Cloud console (no SDK here)."""

from __future__ import annotations

import re
from urllib.parse import quote

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


def vertex_console_url(resource: str) -> str | None:
    """``projects/P/locations/L/trainingPipelines/ID`` -> its Cloud console page; None for a
    name of another shape."""
    match = _RESOURCE.match(resource)
    if match is None or match["kind"] not in _CONSOLE_PATHS:
        return None
    parts = {k: quote(v, safe="") for k, v in match.groupdict().items()}
    path = _CONSOLE_PATHS[match["kind"]].format(**parts)
    return f"{CONSOLE}/{path}?project={parts['project']}"
