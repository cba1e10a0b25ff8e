"""A model folder as a custom-training worker leaves it (``model.pt`` + ``model.json``): an
untrained detector (predictions need not be good; their shapes must be right)."""

from __future__ import annotations

import json
from pathlib import Path

CLASSES = ["car", "person"]


def write_model_folder(folder: Path, classes: list[str] = CLASSES, *, seed: int = 0) -> Path:
    """``folder/model.pt`` (``checkpoint.model_payload`` of a tiny detector) and
    ``folder/model.json``; returns ``folder``."""
    import torch

    from vmt.backends.local.checkpoint import MODEL_FILE, model_payload, save_atomic
    from vmt.backends.local.model import Detector, DetectorConfig

    torch.manual_seed(seed)
    config = DetectorConfig(num_classes=len(classes), input_size=64, widths=(8, 8, 8, 8, 8))
    folder.mkdir(parents=True, exist_ok=True)
    save_atomic(model_payload(Detector(config), classes), folder / MODEL_FILE)
    info = {"format": "vmt-detector/1", "classes": classes, "preset": "test", "input_size": 64}
    (folder / "model.json").write_text(json.dumps(info))
    return folder


def upload_model_folder(storage: object, folder: Path, uri: str) -> str:
    """Copy ``folder``'s files under ``uri`` (``gs://bucket/prefix``); returns ``uri``."""
    bucket_name, _, prefix = uri[5:].partition("/")
    bucket = storage.bucket(bucket_name)  # type: ignore[attr-defined]
    for path in folder.iterdir():
        bucket.blob(f"{prefix.rstrip('/')}/{path.name}").upload_from_filename(str(path))
    return uri
