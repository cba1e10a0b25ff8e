import torch

from vmt.backends.local.letterbox import Letterbox
from vmt.backends.local.predict import to_prediction
from vmt.backends.local.targets import RawDetections
from vmt.domain import Box, Detection


def test_detections_come_back_in_original_pixels() -> None:
    # a 400x200 image in a 128 input: scale 0.32, 32 px of padding above and below
    letterbox = Letterbox.fit(400, 200, 128)
    found = RawDetections(
        boxes=torch.tensor([[32.0, 48.0, 64.0, 80.0], [-10.0, 20.0, 140.0, 120.0]]),
        scores=torch.tensor([0.9, 0.4]),
        labels=torch.tensor([1, 0]),
    )
    prediction = to_prediction("row-1", found, letterbox, ["circle", "star"])
    assert prediction.data_row_id == "row-1"
    assert prediction.detections == (
        Detection(Box("star", 100.0, 50.0, 200.0, 150.0), 0.8999999761581421),
        # reaching into the padding is clipped to the image
        Detection(Box("circle", 0.0, 0.0, 400.0, 200.0), 0.4000000059604645),
    )


def test_boxes_entirely_in_the_padding_are_dropped() -> None:
    letterbox = Letterbox.fit(400, 200, 128)
    found = RawDetections(
        torch.tensor([[0.0, 0.0, 20.0, 10.0]]), torch.tensor([0.9]), torch.tensor([0])
    )
    assert to_prediction("row-1", found, letterbox, ["circle"]).detections == ()
