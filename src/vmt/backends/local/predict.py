"""Running a trained detector: letterbox, forward in batches, decode, map boxes back to the
original image's pixels."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

import numpy as np
import torch

from vmt.backends.local.data import letterbox_sample
from vmt.backends.local.letterbox import Letterbox
from vmt.backends.local.model import Detector, normalise
from vmt.backends.local.targets import RawDetections, decode
from vmt.domain import Box, Detection, Prediction, Sample

SCORE_THRESHOLD = 0.05
MAX_DETECTIONS = 100
BATCH_SIZE = 16


@torch.no_grad()
def detect(
    model: Detector,
    images: torch.Tensor,
    *,
    score_threshold: float = SCORE_THRESHOLD,
    max_detections: int = MAX_DETECTIONS,
) -> list[RawDetections]:
    """Detections (input pixels, on the CPU) for a uint8 ``(B, 3, S, S)`` batch."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    inputs = normalise(images.to(device)).contiguous(memory_format=torch.channels_last)
    heatmap, distances = model(inputs)
    if was_training:
        model.train()
    found = decode(
        heatmap.float(),
        distances.float(),
        stride=model.config.stride,
        score_threshold=score_threshold,
        max_detections=max_detections,
    )
    return [RawDetections(d.boxes.cpu(), d.scores.cpu(), d.labels.cpu()) for d in found]


def to_prediction(
    data_row_id: str, found: RawDetections, letterbox: Letterbox, classes: list[str]
) -> Prediction:
    xyxy = letterbox.to_original(found.boxes.numpy().reshape(-1, 4))
    detections = []
    for (x0, y0, x1, y1), score, label in zip(
        xyxy.tolist(), found.scores.tolist(), found.labels.tolist(), strict=True
    ):
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            continue
        detections.append(Detection(Box(classes[label], x0, y0, x1, y1), float(score)))
    return Prediction(data_row_id, tuple(detections))


def predict_samples(
    model: Detector,
    classes: list[str],
    samples: Iterable[Sample],
    *,
    batch_size: int = BATCH_SIZE,
    score_threshold: float = SCORE_THRESHOLD,
    max_detections: int = MAX_DETECTIONS,
) -> Iterator[Prediction]:
    """One Prediction per sample, in order, boxes in the sample's original pixels."""
    side = model.config.input_size
    iterator = iter(samples)
    while batch := list(islice(iterator, batch_size)):
        loaded = [letterbox_sample(sample, side) for sample in batch]
        images = torch.from_numpy(np.stack([array for array, _ in loaded])).permute(0, 3, 1, 2)
        found = detect(
            model, images, score_threshold=score_threshold, max_detections=max_detections
        )
        for sample, (_, letterbox), raw in zip(batch, loaded, found, strict=True):
            yield to_prediction(sample.data_row_id, raw, letterbox, classes)
