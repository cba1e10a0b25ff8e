"""Predictions and image embeddings in one forward pass: the backbone's last stage (stride 32),
averaged over space, is the image's embedding (``widths[-1]`` floats, 192 by default).

``diverse`` selection spreads its picks over these embeddings (k-center greedy).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from vmt.backends.local.model import Detector
from vmt.backends.local.predict import BATCH_SIZE, predict_samples
from vmt.domain import Prediction, Sample

Embedding = npt.NDArray[np.float32]


def predict_and_embed(
    model: Detector, classes: list[str], samples: Iterable[Sample], *, batch_size: int = BATCH_SIZE
) -> Iterator[tuple[Prediction, Embedding]]:
    """``(Prediction, (D,) float32 embedding)`` per sample, in order."""
    pooled: deque[Embedding] = deque()

    def keep(_module: Any, _inputs: Any, output: torch.Tensor) -> None:
        pooled.extend(output.float().mean(dim=(2, 3)).cpu().numpy().astype(np.float32))

    handle = model.stages[-1].register_forward_hook(keep)
    try:
        for prediction in predict_samples(model, classes, samples, batch_size=batch_size):
            yield prediction, pooled.popleft()
    finally:
        handle.remove()
