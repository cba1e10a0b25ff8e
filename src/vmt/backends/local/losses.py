"""Training losses: penalty-reduced focal loss on the heatmaps (CenterNet) and a weighted GIoU
loss on the boxes regressed around each centre (TTFNet)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vmt.backends.local.targets import Targets, distances_to_boxes

BOX_LOSS_WEIGHT = 5.0


def heatmap_focal_loss(logits: Tensor, target: Tensor) -> Tensor:
    prob = torch.sigmoid(logits)
    positive = target.eq(1.0)
    pos_loss = F.logsigmoid(logits) * (1 - prob) ** 2
    neg_loss = F.logsigmoid(-logits) * prob**2 * (1 - target) ** 4
    num_pos = positive.sum().clamp(min=1)
    return -(pos_loss[positive].sum() + neg_loss[~positive].sum()) / num_pos


def giou_loss(pred: Tensor, target: Tensor) -> Tensor:
    """``1 - GIoU`` of paired ``(n, 4)`` xyxy boxes."""
    area_p = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_t = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    top_left = torch.maximum(pred[:, :2], target[:, :2])
    inter_wh = (torch.minimum(pred[:, 2:], target[:, 2:]) - top_left).clamp(min=0)
    inter = inter_wh[:, 0] * inter_wh[:, 1]
    union = area_p + area_t - inter
    iou = inter / union.clamp(min=1e-6)
    hull_wh = torch.maximum(pred[:, 2:], target[:, 2:]) - torch.minimum(pred[:, :2], target[:, :2])
    hull = (hull_wh[:, 0] * hull_wh[:, 1]).clamp(min=1e-6)
    return 1 - (iou - (hull - union) / hull)


def detection_loss(
    heatmap_logits: Tensor, distances: Tensor, targets: Targets, *, stride: int
) -> tuple[Tensor, Tensor]:
    """(heatmap loss, box loss); the total is ``heatmap + BOX_LOSS_WEIGHT * box``."""
    heat = heatmap_focal_loss(heatmap_logits, targets.heatmap)
    mask = targets.weights > 0
    if not bool(mask.any()):
        return heat, distances.sum() * 0.0
    pred_boxes = distances_to_boxes(distances, stride).permute(0, 2, 3, 1)[mask]
    target_boxes = targets.boxes.permute(0, 2, 3, 1)[mask]
    weights = targets.weights[mask]
    box = (giou_loss(pred_boxes, target_boxes) * weights).sum() / weights.sum().clamp(min=1e-6)
    return heat, box
