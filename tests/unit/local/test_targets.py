import torch

from vmt.backends.local.targets import batched_nms, box_iou, decode, encode


def _perfect_outputs(boxes: torch.Tensor, labels: torch.Tensor, grid: int, stride: int):
    targets = encode([boxes], [labels], num_classes=3, grid=grid, stride=stride)
    logits = torch.logit(targets.heatmap.clamp(1e-4, 1 - 1e-4))
    centres = torch.arange(grid, dtype=torch.float32) * stride + stride / 2
    xs, ys = centres[None, :], centres[:, None]
    tb = targets.boxes[0]
    distances = torch.stack((xs - tb[0], ys - tb[1], tb[2] - xs, tb[3] - ys))[None]
    return targets, logits, distances


def test_encode_then_decode_gives_the_boxes_back() -> None:
    boxes = torch.tensor([[10.0, 12.0, 40.0, 50.0], [60.0, 8.0, 90.0, 30.0], [20, 70, 60, 120]])
    labels = torch.tensor([0, 2, 1])
    targets, logits, distances = _perfect_outputs(boxes, labels, grid=32, stride=4)
    # one exact peak per box, on its own class's heatmap
    assert int((targets.heatmap == 1).sum()) == 3
    assert targets.weights.sum() > 0
    found = decode(logits, distances, stride=4, score_threshold=0.5)[0]
    assert sorted(found.labels.tolist()) == [0, 1, 2]
    for box, label in zip(boxes, labels, strict=True):
        match = found.boxes[found.labels == label][0]
        torch.testing.assert_close(match, box)


def test_smaller_box_owns_shared_cells() -> None:
    big = torch.tensor([0.0, 0.0, 120.0, 120.0])
    small = torch.tensor([50.0, 50.0, 70.0, 70.0])
    targets = encode(
        [torch.stack([big, small])], [torch.tensor([0, 1])], num_classes=2, grid=32, stride=4
    )
    # the cell at the small box's centre regresses the small box
    torch.testing.assert_close(targets.boxes[0, :, 15, 15], small)


def test_empty_image_has_no_targets() -> None:
    targets = encode(
        [torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.long)], num_classes=2, grid=8, stride=4
    )
    assert targets.heatmap.sum() == 0 and targets.weights.sum() == 0


def test_nms_is_class_wise() -> None:
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    labels = torch.tensor([0, 0, 1, 0])
    keep = batched_nms(boxes, scores, labels, iou_threshold=0.5)
    # box 1 overlaps box 0 (same class): dropped; box 2 overlaps too but is another class
    assert keep.tolist() == [0, 2, 3]


def test_box_iou() -> None:
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[5.0, 0, 15, 10], [20, 20, 30, 30]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[50 / 150, 0.0]]))
