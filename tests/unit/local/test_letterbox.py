import numpy as np
import pytest
from PIL import Image

from vmt.backends.local.letterbox import PAD_VALUE, Letterbox


@pytest.mark.parametrize(
    ("width", "height", "side", "scale", "pad"),
    [
        (320, 160, 160, 0.5, (0, 40)),  # landscape: padded above and below
        (100, 200, 160, 0.8, (40, 0)),  # portrait: padded left and right
        (64, 64, 128, 2.0, (0, 0)),  # square, scaled up
    ],
)
def test_fit(width: int, height: int, side: int, scale: float, pad: tuple[int, int]) -> None:
    box = Letterbox.fit(width, height, side)
    assert box.scale == pytest.approx(scale)
    assert (box.pad_x, box.pad_y) == pad


def test_boxes_round_trip_and_clip() -> None:
    box = Letterbox.fit(317, 203, 160)
    xyxy = np.array([[0, 0, 317, 203], [10.5, 20.25, 100, 150]], dtype=np.float32)
    inside = box.to_input(xyxy)
    assert inside.min() >= 0 and inside.max() <= 160
    np.testing.assert_allclose(box.to_original(inside), xyxy, atol=1e-3)
    # outside the image (in the padding) is clipped back onto it
    np.testing.assert_allclose(
        box.to_original(np.array([[-5, -5, 200, 200]], dtype=np.float32)), [[0, 0, 317, 203]]
    )


def test_apply_places_the_image_where_the_boxes_say() -> None:
    image = Image.new("RGB", (200, 100), (0, 0, 0))
    image.paste((255, 255, 255), (50, 20, 150, 80))  # a white block at x 50..150, y 20..80
    box = Letterbox.fit(200, 100, 64)
    canvas = box.apply(image)
    assert canvas.shape == (64, 64, 3)
    assert (canvas[0, 0] == PAD_VALUE).all()  # padding above the image
    ys, xs = np.nonzero(canvas[..., 0] > 200)
    x0, y0, x1, y1 = box.to_input(np.array([[50, 20, 150, 80]], dtype=np.float32))[0]
    assert xs.min() == pytest.approx(x0, abs=1) and xs.max() + 1 == pytest.approx(x1, abs=1)
    assert ys.min() == pytest.approx(y0, abs=1) and ys.max() + 1 == pytest.approx(y1, abs=1)


def test_rejects_an_empty_image() -> None:
    with pytest.raises(ValueError, match="positive"):
        Letterbox.fit(0, 10, 64)
