"""Images in memory for training: every sample decoded once, letterboxed to the model's input and
kept as uint8, with its boxes mapped to input pixels. Small inputs keep this cheap (a 160 px input
is 77 KB an image)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from vmt.backends.local.letterbox import Letterbox
from vmt.domain import Sample
from vmt.errors import InputError
from vmt.formats.image_uri import local_path


@dataclass(frozen=True, slots=True)
class LetterboxedImages:
    images: Tensor
    """(N, 3, S, S) uint8 RGB."""
    boxes: list[Tensor]
    """(n, 4) float32 xyxy input pixels, one tensor per image."""
    labels: list[Tensor]
    """(n,) int64 class indices."""
    letterboxes: list[Letterbox]
    samples: list[Sample]

    def __len__(self) -> int:
        return len(self.samples)


def open_rgb(sample: Sample) -> Image.Image:
    path = local_path(sample.image_uri)
    if path is None:
        raise InputError(f"the image of data row {sample.data_row_id} is not a local file")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise InputError(
            f"cannot read the image of data row {sample.data_row_id} ({path.name}): {exc}"
        ) from exc


def letterbox_sample(sample: Sample, side: int) -> tuple[np.ndarray, Letterbox]:
    image = open_rgb(sample)
    box = Letterbox.fit(image.width, image.height, side)
    return box.apply(image), box


def load_letterboxed(
    samples: Iterable[Sample], *, side: int, class_index: dict[str, int]
) -> LetterboxedImages:
    """Decode and letterbox ``samples``; boxes of labels outside ``class_index`` are dropped."""
    arrays: list[np.ndarray] = []
    boxes: list[Tensor] = []
    labels: list[Tensor] = []
    letterboxes: list[Letterbox] = []
    kept: list[Sample] = []
    for sample in samples:
        array, letterbox = letterbox_sample(sample, side)
        known = [b for b in sample.boxes if b.label in class_index]
        xyxy = np.array([[b.x0, b.y0, b.x1, b.y1] for b in known], dtype=np.float32)
        xyxy = letterbox.to_input(xyxy.reshape(-1, 4))
        arrays.append(array)
        boxes.append(torch.from_numpy(xyxy))
        labels.append(torch.tensor([class_index[b.label] for b in known], dtype=torch.int64))
        letterboxes.append(letterbox)
        kept.append(sample)
    stacked = (
        torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        if arrays
        else torch.zeros(0, 3, side, side, dtype=torch.uint8)
    )
    return LetterboxedImages(stacked, boxes, labels, letterboxes, kept)


def class_names(samples: Sequence[Sample]) -> list[str]:
    """The sorted label names seen in ``samples``."""
    return sorted({box.label for sample in samples for box in sample.boxes})
