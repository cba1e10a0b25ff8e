"""Letterboxing: fit any image into a fixed square input, and map boxes both ways.

The image is scaled by ``side / max(width, height)`` and centred on a grey square; boxes go in
with ``x * scale + pad_x`` and come back with the inverse, clipped to the original image. Pure
arithmetic plus one PIL resize: no torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

PAD_VALUE = 128
"""Grey of the padding: zero after the model's input normalisation."""


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How an image of ``width x height`` sits inside a ``side x side`` input."""

    width: int
    height: int
    side: int
    scale: float
    pad_x: float
    pad_y: float

    @classmethod
    def fit(cls, width: int, height: int, side: int) -> Letterbox:
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        scale = side / max(width, height)
        new_w, new_h = _resized(width, height, scale)
        return cls(width, height, side, scale, (side - new_w) // 2, (side - new_h) // 2)

    @property
    def resized(self) -> tuple[int, int]:
        return _resized(self.width, self.height, self.scale)

    def to_input(self, xyxy: np.ndarray) -> np.ndarray:
        """Boxes ``(n, 4)`` in original pixels -> input pixels."""
        out = np.asarray(xyxy, dtype=np.float32) * self.scale
        out[:, 0::2] += self.pad_x
        out[:, 1::2] += self.pad_y
        return out

    def to_original(self, xyxy: np.ndarray) -> np.ndarray:
        """Boxes ``(n, 4)`` in input pixels -> original pixels, clipped to the image."""
        out = np.asarray(xyxy, dtype=np.float32).copy()
        out[:, 0::2] = (out[:, 0::2] - self.pad_x) / self.scale
        out[:, 1::2] = (out[:, 1::2] - self.pad_y) / self.scale
        out[:, 0::2] = out[:, 0::2].clip(0, self.width)
        out[:, 1::2] = out[:, 1::2].clip(0, self.height)
        return out

    def apply(self, image: Image.Image) -> np.ndarray:
        """The letterboxed ``(side, side, 3)`` uint8 RGB array of ``image``."""
        if image.size != (self.width, self.height):
            raise ValueError(
                f"image is {image.size}, letterbox was fit to {self.width}x{self.height}"
            )
        rgb = image.convert("RGB").resize(self.resized, Image.Resampling.BILINEAR)
        canvas = np.full((self.side, self.side, 3), PAD_VALUE, dtype=np.uint8)
        new_w, new_h = self.resized
        x, y = int(self.pad_x), int(self.pad_y)
        canvas[y : y + new_h, x : x + new_w] = np.asarray(rgb, dtype=np.uint8)
        return canvas


def _resized(width: int, height: int, scale: float) -> tuple[int, int]:
    return max(1, round(width * scale)), max(1, round(height * scale))
