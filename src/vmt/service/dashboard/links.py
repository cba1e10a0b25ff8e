"""Links from a run to where its resources live: the Labelbox model run, the trainer's console
pages (``vmt.backends.registry``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from vmt.backends.registry import TrainerSpec

LABELBOX_APP = "https://app.labelbox.com"


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str
    text: str


def run_links(
    source: Mapping[str, object], handles: Mapping[str, str], trainer: TrainerSpec | None
) -> list[Link]:
    """The Labelbox model run (when the run came from one) and each cloud resource its
    trainer recorded (``TrainerSpec.resources``, linked by ``TrainerSpec.console_url``)."""
    links: list[Link] = []
    model_run = source.get("model_run_id")
    if isinstance(model_run, str) and model_run:
        model = source.get("model_id")
        if isinstance(model, str) and model:
            url = f"{LABELBOX_APP}/models/{quote(model, safe='')}/{quote(model_run, safe='')}"
        else:
            url = f"{LABELBOX_APP}/models"
        links.append(Link("Labelbox model run", url, model_run))
    for resource in trainer.resources if trainer else ():
        value = handles.get(resource.handle)
        console = trainer.console_url(value) if trainer and value else None
        if value and console:
            links.append(Link(resource.label, console, value.rsplit("/", 1)[-1]))
    return links
