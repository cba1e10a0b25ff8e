"""Files a training run leaves under its folder, written atomically (temp file + rename):

- ``last.pt``: everything needed to continue: model, optimiser, epoch, RNG state, best score,
  the plan and history; rewritten at the end of every epoch.
- ``model.pt``: the model to predict with (the best epoch by validation AP50): weights, network
  config and class names; ``load_model`` reads it back without the training state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vmt.backends.local.model import Detector, DetectorConfig, place
from vmt.durable_files import atomic_path
from vmt.errors import InputError

MODEL_FORMAT = "vmt-local-detector/1"
LAST_CHECKPOINT = "last.pt"
MODEL_FILE = "model.pt"


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The training state saved at ``path``, or None if there is none yet."""
    if not path.exists():
        return None
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return state


def model_payload(model: Detector, classes: list[str]) -> dict[str, Any]:
    return {
        "format": MODEL_FORMAT,
        "config": model.config.to_dict(),
        "classes": list(classes),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }


def load_model(path: Path, device: torch.device) -> tuple[Detector, list[str]]:
    """A trained detector in eval mode on ``device``, and its class names."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise InputError(f"cannot load the local model {path}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise InputError(f"{path} is not a local detector model ({MODEL_FORMAT})")
    model = Detector(DetectorConfig.from_dict(payload["config"]))
    model.load_state_dict(payload["state_dict"])
    place(model, device).eval()
    return model, list(payload["classes"])
