"""What Vertex AutoML object detection would reject, checked before anything is created.

An accumulator: ``update`` with every sample that will be imported, then ``check`` raises one
``InputError`` listing every broken limit (so the user fixes them all in one go). The limits
and the per-class/dataset-size rules are ``vmt.formats.vertex``'s (shared with ``vmt convert``);
this adds the per-image box limit and the non-empty splits that a training run needs."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from vmt.domain import Sample, Split
from vmt.errors import InputError
from vmt.formats.vertex import MAX_BOXES_PER_IMAGE, limit_problems

_SPLITS = (Split.TRAINING, Split.VALIDATION, Split.TEST)


@dataclass
class DatasetLimits:
    images: int = 0
    boxes: int = 0
    images_per_split: Counter[Split] = field(default_factory=Counter)
    classes: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    """class name -> split -> images with a box of that class."""
    crowded: list[str] = field(default_factory=list)
    """Data row ids with more than MAX_BOXES_PER_IMAGE boxes (the first few)."""
    crowded_count: int = 0

    def update(self, sample: Sample) -> None:
        if sample.split not in _SPLITS:
            return
        self.images += 1
        self.boxes += len(sample.boxes)
        self.images_per_split[sample.split] += 1
        for name in {box.label for box in sample.boxes}:
            self.classes[name][sample.split.value] += 1
        if len(sample.boxes) > MAX_BOXES_PER_IMAGE:
            self.crowded_count += 1
            if len(self.crowded) < 5:
                self.crowded.append(sample.data_row_id)

    def update_all(self, samples: Iterable[Sample]) -> DatasetLimits:
        for sample in samples:
            self.update(sample)
        return self

    def problems(self) -> list[str]:
        found = limit_problems(self.classes, images=self.images, boxes=self.boxes)
        if self.crowded_count:
            found.append(
                f"{self.crowded_count} image(s) with more than {MAX_BOXES_PER_IMAGE} boxes "
                f"(e.g. {', '.join(self.crowded)})"
            )
        empty = [split.value for split in _SPLITS if not self.images_per_split[split]]
        if empty:
            found.append(f"empty split(s): {', '.join(empty)} (assign data rows to every split)")
        return found

    def check(self) -> None:
        """Raise InputError describing every limit the dataset breaks."""
        found = self.problems()
        if found:
            raise InputError("Vertex AutoML would reject this dataset: " + "; ".join(found))
