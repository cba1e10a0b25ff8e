import torch

from vmt.backends.local.augment import AugmentConfig, augment_batch

NO_COLOUR = AugmentConfig(
    brightness=0.0, contrast=(1, 1), saturation=(1, 1), invert_probability=0.0
)


def test_boxes_follow_the_pixels() -> None:
    side = 64
    images = torch.full((8, 3, side, side), 128, dtype=torch.uint8)
    box = torch.tensor([[10.0, 20.0, 30.0, 34.0]])
    images[:, :, 20:34, 10:30] = 255  # a white block exactly where the box is
    generator = torch.Generator().manual_seed(3)
    out, boxes, labels = augment_batch(
        images, [box] * 8, [torch.tensor([1])] * 8, generator=generator, config=NO_COLOUR
    )
    checked = 0
    for image, moved, label in zip(out, boxes, labels, strict=True):
        if len(moved) == 0:  # pushed out of view
            continue
        assert label.tolist() == [1]
        ys, xs = torch.nonzero(image.abs().amax(dim=0) > 0.5, as_tuple=True)
        x0, y0, x1, y1 = moved[0].tolist()
        assert abs(xs.min().item() - x0) <= 1.5 and abs(xs.max().item() + 1 - x1) <= 1.5
        assert abs(ys.min().item() - y0) <= 1.5 and abs(ys.max().item() + 1 - y1) <= 1.5
        checked += 1
    assert checked >= 4


def test_same_generator_state_gives_the_same_batch() -> None:
    images = torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8)
    boxes = [torch.tensor([[4.0, 4.0, 20.0, 20.0]])] * 4
    labels = [torch.tensor([0])] * 4
    a = augment_batch(images, boxes, labels, generator=torch.Generator().manual_seed(1))
    b = augment_batch(images, boxes, labels, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a[0], b[0])
    for x, y in zip(a[1], b[1], strict=True):
        torch.testing.assert_close(x, y)
