"""The one vocabulary of the package: splits, boxes, samples, detections, rejections.

Boxes are always pixel ``x0, y0, x1, y1`` of the original image inside the package; the
Labelbox (left/top/width/height), Vertex (fractions) and COCO (xywh) conventions are converted
only at the edges, in ``vmt.formats``. A box read as left/top/width/height keeps the width and
height it was given: ``(left + width) - left`` is not always ``width`` in floating point
(``(726.4 + 51.2) - 726.4 == 51.200000000000045``), and sizes, areas and IoUs are computed from
the numbers the source gave, as pycocotools computes them from a COCO ``bbox``. Nothing here
does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Split(StrEnum):
    TRAINING = "training"
    VALIDATION = "validation"
    TEST = "test"
    UNASSIGNED = "unassigned"

    @classmethod
    def parse(cls, value: object) -> Split:
        """Labelbox spellings, case-insensitive: training/train, validation/val, test.

        Anything else (missing, misspelt, not a string) is UNASSIGNED.
        """
        if not isinstance(value, str):
            return cls.UNASSIGNED
        return _SPLIT_ALIASES.get(value.strip().lower(), cls.UNASSIGNED)


_SPLIT_ALIASES = {
    "training": Split.TRAINING,
    "train": Split.TRAINING,
    "validation": Split.VALIDATION,
    "val": Split.VALIDATION,
    "test": Split.TEST,
}


@dataclass(frozen=True, slots=True)
class Box:
    """A labelled box in pixels of the original image, corners ``(x0, y0)``-``(x1, y1)``."""

    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    given_width: float | None = field(default=None, compare=False)
    """The width the source gave (left/top/width/height formats), which ``width`` returns
    instead of ``x1 - x0``; the corners are ``left + width``. Not compared: the same box."""
    given_height: float | None = field(default=None, compare=False)
    """As ``given_width``, for the height."""
    crowd: bool = False
    """A COCO ``iscrowd`` region: an ignore region for evaluation (never a box to find)."""
    given_area: float | None = None
    """The annotation's own ``area`` (COCO), which size ranges use instead of ``w * h``."""

    @classmethod
    def from_ltwh(cls, label: str, left: float, top: float, width: float, height: float) -> Box:
        """The box as left/top/width/height give it: width and height kept exactly."""
        return cls(label, left, top, left + width, top + height, width, height)

    @property
    def width(self) -> float:
        """``given_width`` when the source gave one, else ``x1 - x0``."""
        return self.x1 - self.x0 if self.given_width is None else self.given_width

    @property
    def height(self) -> float:
        """``given_height`` when the source gave one, else ``y1 - y0``."""
        return self.y1 - self.y0 if self.given_height is None else self.given_height

    @property
    def area(self) -> float:
        """``given_area`` when the source has one, else ``w * h``."""
        if self.given_area is not None:
            return self.given_area
        return max(self.width, 0.0) * max(self.height, 0.0)

    def to_ltwh(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.width, self.height)


@dataclass(frozen=True, slots=True)
class Sample:
    """One data row: an image, its size, its split and its ground-truth boxes."""

    data_row_id: str
    image_uri: str
    width: int | None
    height: int | None
    split: Split
    boxes: tuple[Box, ...] = ()
    mime_type: str | None = None
    global_key: str | None = None
    line: int | None = None
    """1-based line number in the file it came from, for error messages."""


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box
    score: float


@dataclass(frozen=True, slots=True)
class Prediction:
    """The detections of one data row (possibly none)."""

    data_row_id: str
    detections: tuple[Detection, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejection:
    """Something left out, with why: a reason code, where it was, and a readable detail."""

    reason: str
    """A `vmt.reasons.Reason` value, as the plain string that reports and files carry."""
    line: int | None = None
    data_row_id: str | None = None
    detail: str = ""
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if type(self.reason) is not str:  # a Reason member: keep its plain value
            object.__setattr__(self, "reason", str(self.reason))
