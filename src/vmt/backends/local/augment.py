"""Batch augmentation on letterboxed tensors, drawn from one seeded ``torch.Generator``.

Geometry: a random member of the 8 flips/transposes of the square, scale jitter and translation,
applied with one ``grid_sample`` per batch; boxes follow exactly (axis-aligned maps keep boxes
axis-aligned) and boxes pushed mostly out of view are dropped. Colour: channel shuffles,
brightness, contrast, saturation and inversion (the shape, not its colour, is the class).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from vmt.backends.local.model import normalise


@dataclass(frozen=True, slots=True)
class AugmentConfig:
    scale: tuple[float, float] = (0.8, 1.25)
    translate: float = 0.2
    """Largest shift as a fraction of the input side."""
    min_visible: float = 0.4
    """Boxes keeping less than this fraction of their area in view are dropped."""
    brightness: float = 0.3
    contrast: tuple[float, float] = (0.7, 1.3)
    saturation: tuple[float, float] = (0.5, 1.5)
    invert_probability: float = 0.0


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def augment_batch(
    images: Tensor,
    boxes: list[Tensor],
    labels: list[Tensor],
    *,
    generator: torch.Generator,
    config: AugmentConfig = AugmentConfig(),
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """uint8 ``(B, 3, S, S)`` + input-pixel boxes -> normalised float images + moved boxes."""
    batch, _, side, _ = images.shape
    x = normalise(images)
    # --- geometry: p' = A (p - c) + c + t, A = scale * (flips, transpose) -------------------
    flip_x = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
    flip_y = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
    transpose = torch.rand(batch, generator=generator) < 0.5
    scale = _uniform(batch, *config.scale, generator)
    shift = _uniform(batch * 2, -config.translate, config.translate, generator).view(batch, 2)
    shift = shift * side
    forward = torch.zeros(batch, 2, 2)
    forward[:, 0, 0] = flip_x
    forward[:, 1, 1] = flip_y
    swap = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    forward = torch.where(transpose[:, None, None], swap @ forward, forward)
    forward = forward * scale[:, None, None]
    inverse = torch.linalg.inv(forward)
    theta = torch.cat((inverse, -(inverse @ (2 * shift / side)[:, :, None])), dim=2)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    centre = side / 2
    moved_boxes, moved_labels = [], []
    for b in range(batch):
        if boxes[b].numel() == 0:
            moved_boxes.append(boxes[b].reshape(0, 4))
            moved_labels.append(labels[b])
            continue
        corners = boxes[b][:, [0, 1, 2, 3, 0, 3, 2, 1]].view(-1, 4, 2) - centre
        corners = corners @ forward[b].T + centre + shift[b]
        moved = torch.cat((corners.amin(dim=1), corners.amax(dim=1)), dim=1)
        clipped = moved.clamp(0, side)
        area = (moved[:, 2:] - moved[:, :2]).prod(dim=1)
        visible = (clipped[:, 2:] - clipped[:, :2]).clamp(min=0).prod(dim=1)
        size_ok = ((clipped[:, 2:] - clipped[:, :2]) >= 2).all(dim=1)
        keep = (visible >= config.min_visible * area) & size_ok
        moved_boxes.append(clipped[keep])
        moved_labels.append(labels[b][keep])
    # --- colour -----------------------------------------------------------------------------
    order = torch.argsort(torch.rand(batch, 3, generator=generator), dim=1)
    x = torch.gather(x, 1, order[:, :, None, None].expand_as(x))
    grey = x.mean(dim=1, keepdim=True)
    saturation = _uniform(batch, *config.saturation, generator)[:, None, None, None]
    x = grey + (x - grey) * saturation
    contrast = _uniform(batch, *config.contrast, generator)[:, None, None, None]
    brightness = _uniform(batch, -config.brightness, config.brightness, generator)
    x = x * contrast + brightness[:, None, None, None] / 0.25
    invert = torch.rand(batch, generator=generator) < config.invert_probability
    x = torch.where(invert[:, None, None, None], -x, x)
    return x, moved_boxes, moved_labels
