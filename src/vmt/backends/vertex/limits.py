"""What Vertex AutoML object detection would reject, checked before anything is created.

An accumulator: ``update`` with every sample that will be imported, then ``check`` raises one
``InputError`` listing every broken limit (so the user fixes them all in one go)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from vmt.domain import Sample, Split
from vmt.errors import InputError

MIN_TRAINING_IMAGES_PER_LABEL = 10
MAX_BOXES_PER_IMAGE = 500
MAX_IMAGES = 150_000
MAX_BOXES = 1_000_000
MAX_LABELS = 1_000

_SPLITS = (Split.TRAINING, Split.VALIDATION, Split.TEST)


@dataclass
class DatasetLimits:
    images: int = 0
    boxes: int = 0
    images_per_split: Counter[Split] = field(default_factory=Counter)
    training_images_per_label: Counter[str] = field(default_factory=Counter)
    labels: set[str] = field(default_factory=set)
    crowded: list[str] = field(default_factory=list)
    """Data row ids with more than MAX_BOXES_PER_IMAGE boxes (first few only)."""
    crowded_count: int = 0

    def update(self, sample: Sample) -> None:
        if sample.split not in _SPLITS:
            return
        self.images += 1
        self.boxes += len(sample.boxes)
        self.images_per_split[sample.split] += 1
        names = {box.label for box in sample.boxes}
        self.labels |= names
        if sample.split is Split.TRAINING:
            self.training_images_per_label.update(names)
        if len(sample.boxes) > MAX_BOXES_PER_IMAGE:
            self.crowded_count += 1
            if len(self.crowded) < 5:
                self.crowded.append(sample.data_row_id)

    def update_all(self, samples: Iterable[Sample]) -> DatasetLimits:
        for sample in samples:
            self.update(sample)
        return self

    def problems(self) -> list[str]:
        found: list[str] = []
        few = sorted(
            (name, self.training_images_per_label[name])
            for name in self.labels
            if self.training_images_per_label[name] < MIN_TRAINING_IMAGES_PER_LABEL
        )
        if few:
            listed = ", ".join(f"{name!r} has {count}" for name, count in few[:10])
            more = f" (and {len(few) - 10} more)" if len(few) > 10 else ""
            found.append(
                f"every class needs >= {MIN_TRAINING_IMAGES_PER_LABEL} training images with a box: "
                f"{listed}{more}"
            )
        if self.crowded_count:
            found.append(
                f"{self.crowded_count} image(s) have more than {MAX_BOXES_PER_IMAGE} boxes "
                f"(e.g. {', '.join(self.crowded)})"
            )
        if self.images > MAX_IMAGES:
            found.append(f"{self.images} images, Vertex takes at most {MAX_IMAGES:,}")
        if self.boxes > MAX_BOXES:
            found.append(f"{self.boxes} boxes, Vertex takes at most {MAX_BOXES:,}")
        if len(self.labels) > MAX_LABELS:
            found.append(f"{len(self.labels)} classes, Vertex takes at most {MAX_LABELS:,}")
        if not self.labels:
            found.append("no boxes at all")
        empty = [split.value for split in _SPLITS if not self.images_per_split[split]]
        if empty:
            found.append(f"empty split(s): {', '.join(empty)} (assign data rows to every split)")
        return found

    def check(self) -> None:
        """Raise InputError describing every limit the dataset breaks."""
        found = self.problems()
        if found:
            raise InputError("Vertex AutoML would reject this dataset: " + "; ".join(found))
