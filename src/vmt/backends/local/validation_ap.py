"""A small, fast AP50 for choosing epochs during training (the reported metrics come from
``vmt.evaluation``): per class, greedy matching by score at IoU >= 0.5, all-point interpolated
precision, averaged over the classes that have ground truth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    top_left = np.maximum(box[:2], others[:, :2])
    bottom_right = np.minimum(box[2:], others[:, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=1)
    area = (box[2:] - box[:2]).prod()
    areas = (others[:, 2:] - others[:, :2]).prod(axis=1)
    return np.asarray(inter / np.maximum(area + areas - inter, 1e-9))


def average_precision_50(
    truths: Sequence[tuple[np.ndarray, np.ndarray]],
    detections: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    num_classes: int,
) -> float:
    """``truths[i] = (boxes (n, 4), labels (n,))``, ``detections[i] = (boxes, scores, labels)``
    for image ``i``, all in one coordinate frame per image. Returns mean AP50 over classes."""
    aps = []
    for cls in range(num_classes):
        gt = [boxes[labels == cls] for boxes, labels in truths]
        total = sum(len(g) for g in gt)
        if total == 0:
            continue
        records = [
            (float(score), image, box)
            for image, (boxes, scores, labels) in enumerate(detections)
            for box, score in zip(boxes[labels == cls], scores[labels == cls], strict=True)
        ]
        records.sort(key=lambda r: -r[0])
        used = [np.zeros(len(g), dtype=bool) for g in gt]
        hits = np.zeros(len(records))
        for k, (_, image, box) in enumerate(records):
            if len(gt[image]) == 0:
                continue
            ious = _iou(box, gt[image])
            ious[used[image]] = -1.0
            best = int(ious.argmax())
            if ious[best] >= 0.5:
                used[image][best] = True
                hits[k] = 1.0
        tp = np.cumsum(hits)
        recall = tp / total
        precision = tp / np.arange(1, len(records) + 1)
        envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(records) else precision
        recall_steps = np.diff(np.concatenate(([0.0], recall)))
        aps.append(float((recall_steps * envelope).sum()))
    return float(np.mean(aps)) if aps else 0.0
