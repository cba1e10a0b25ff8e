"""Between boxes and the network's output grid: encoding training targets, decoding detections.

Targets follow TTFNet: each box puts an elliptical Gaussian peak (sized by the box) on its class's
heatmap at the cell holding its centre, and every cell in the central ``BETA`` part of the box
regresses the whole box (distances to its four sides), weighted by that Gaussian so a box's
weights sum to ``log(area)``. When boxes overlap, the smaller one owns the shared cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

ALPHA = 0.54
"""Gaussian spread relative to the box size (heatmap)."""
BETA = 0.54
"""Central part of the box whose cells regress it."""


@dataclass(frozen=True, slots=True)
class Targets:
    heatmap: Tensor
    """(B, C, H, W) in [0, 1], exactly 1 at each box's centre cell."""
    boxes: Tensor
    """(B, 4, H, W) the box (x0, y0, x1, y1, input pixels) each cell regresses."""
    weights: Tensor
    """(B, H, W) regression weight per cell, 0 where a cell regresses nothing."""


def cell_centres(size: int, stride: int, device: torch.device | None = None) -> Tensor:
    """Input-pixel coordinate of the centre of each of ``size`` cells along one axis."""
    return torch.arange(size, dtype=torch.float32, device=device) * stride + stride / 2


def encode(
    boxes: list[Tensor], labels: list[Tensor], *, num_classes: int, grid: int, stride: int
) -> Targets:
    """Targets for a batch: ``boxes[b]`` is ``(n, 4)`` input-pixel xyxy, ``labels[b]`` ``(n,)``."""
    batch = len(boxes)
    heatmap = torch.zeros(batch, num_classes, grid, grid)
    box_targets = torch.zeros(batch, 4, grid, grid)
    weights = torch.zeros(batch, grid, grid)
    centres = cell_centres(grid, stride)
    for b in range(batch):
        if boxes[b].numel() == 0:
            continue
        areas = (boxes[b][:, 2] - boxes[b][:, 0]) * (boxes[b][:, 3] - boxes[b][:, 1])
        for k in torch.argsort(areas, descending=True).tolist():
            x0, y0, x1, y1 = boxes[b][k].tolist()
            w, h = x1 - x0, y1 - y0
            if w <= 0 or h <= 0:
                continue
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            # peak at the cell that holds the centre
            pj = min(max(int(cx // stride), 0), grid - 1)
            pi = min(max(int(cy // stride), 0), grid - 1)
            sx = max(ALPHA * w / stride / 6, 0.3)
            sy = max(ALPHA * h / stride / 6, 0.3)
            dj = torch.arange(grid, dtype=torch.float32) - pj
            di = torch.arange(grid, dtype=torch.float32) - pi
            gauss = torch.exp(-(di[:, None] ** 2) / (2 * sy**2) - dj[None, :] ** 2 / (2 * sx**2))
            gauss[gauss < 1e-4] = 0.0
            cls = int(labels[b][k])
            heatmap[b, cls] = torch.maximum(heatmap[b, cls], gauss)
            # regression region: cells whose centres lie in the central BETA part of the box
            inside_x = (centres - cx).abs() <= BETA * w / 2
            inside_y = (centres - cy).abs() <= BETA * h / 2
            region = inside_y[:, None] & inside_x[None, :]
            region[pi, pj] = True
            region_weight = gauss * region
            total = float(region_weight.sum())
            if total <= 0:
                continue
            region_weight = region_weight / total * math.log(max(w * h, 2.0))
            box_targets[b, :, region] = torch.tensor([x0, y0, x1, y1])[:, None]
            weights[b][region] = region_weight[region]
    return Targets(heatmap, box_targets, weights)


def distances_to_boxes(distances: Tensor, stride: int) -> Tensor:
    """(B, 4, H, W) left/top/right/bottom distances -> (B, 4, H, W) xyxy input pixels."""
    _, _, height, width = distances.shape
    xs = cell_centres(width, stride, distances.device)[None, :]
    ys = cell_centres(height, stride, distances.device)[:, None]
    return torch.stack(
        (
            xs - distances[:, 0],
            ys - distances[:, 1],
            xs + distances[:, 2],
            ys + distances[:, 3],
        ),
        dim=1,
    )


@dataclass(frozen=True, slots=True)
class RawDetections:
    """Detections of one image in input pixels."""

    boxes: Tensor  # (n, 4) xyxy
    scores: Tensor  # (n,)
    labels: Tensor  # (n,) int64


def decode(
    heatmap_logits: Tensor,
    distances: Tensor,
    *,
    stride: int,
    score_threshold: float = 0.05,
    max_detections: int = 100,
    nms_iou: float = 0.6,
) -> list[RawDetections]:
    """Peaks of the heatmap (3x3 local maxima), their boxes, class-wise NMS; one per image."""
    heat = torch.sigmoid(heatmap_logits)
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    batch, _, height, width = heat.shape
    all_boxes = distances_to_boxes(distances, stride).flatten(2)  # (B, 4, H*W)
    flat = peaks.flatten(1)
    k = min(max_detections, flat.shape[1])
    scores, index = flat.topk(k, dim=1)
    results = []
    for b in range(batch):
        keep = scores[b] >= score_threshold
        idx, sc = index[b][keep], scores[b][keep]
        labels = idx // (height * width)
        boxes = all_boxes[b][:, idx % (height * width)].T
        chosen = batched_nms(boxes, sc, labels, iou_threshold=nms_iou)
        results.append(RawDetections(boxes[chosen], sc[chosen], labels[chosen]))
    return results


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """(n, 4) x (m, 4) xyxy -> (n, m) IoU."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / union.clamp(min=1e-9)


def batched_nms(boxes: Tensor, scores: Tensor, labels: Tensor, *, iou_threshold: float) -> Tensor:
    """Indices kept by greedy NMS run separately per label, highest score first."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True)
    iou = box_iou(boxes[order], boxes[order])
    same = labels[order][:, None] == labels[order][None, :]
    suppresses = (iou > iou_threshold) & same
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    rows = suppresses.cpu()
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= rows[i]
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]
