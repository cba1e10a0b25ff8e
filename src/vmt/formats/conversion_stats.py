"""What a conversion did: rows read, written and rejected (by reason), warnings, classes.

One `ConversionStats` is filled while an export streams through the parser (and the convert
core); it stays small whatever the file size: counters, at most `EXAMPLES_PER_CODE` examples
per reason code, and one counter per class and split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vmt.domain import Rejection, Split
from vmt.reasons import Reason

EXAMPLES_PER_CODE = 20
"""How many examples (line, data row id, detail) are kept per rejection or warning code."""

PixelBox = tuple[str, float, float, float, float, float, float]
"""A box while a row is converted: label, x0, y0, x1, y1, width, height in pixels (no per-box
object). Width and height are the ones the source gave (``x1 - x0`` only after clipping), in
`vmt.domain.Box` field order, so ``Box(*box)`` is the box."""


@dataclass(slots=True)
class ConversionStats:
    rows_read: int = 0
    """Non-blank lines seen; each one ends up written or rejected with exactly one reason."""
    rows_written: int = 0
    rows_with_boxes: int = 0
    """Rows (written or not, duplicates aside) whose label holds at least one bounding-box
    object, usable or not: when it is 0, no option can make the export convert."""
    boxes_written: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _images_per_split: dict[Split, dict[str, int]] = field(
        default_factory=lambda: {split: {} for split in Split}, repr=False
    )
    _boxes_per_split: dict[Split, dict[str, int]] = field(
        default_factory=lambda: {split: {} for split in Split}, repr=False
    )

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def classes(self) -> dict[str, dict[str, int]]:
        """``{class name: {split: images with at least one box of that class}}``."""
        out: dict[str, dict[str, int]] = {}
        for split, counts in self._images_per_split.items():
            for name, images in counts.items():
                out.setdefault(name, {})[split.value] = images
        return {name: out[name] for name in sorted(out)}

    def images_per_class(self, split: Split) -> dict[str, int]:
        return dict(self._images_per_split[split])

    def boxes_per_class(self, split: Split) -> dict[str, int]:
        return dict(self._boxes_per_split[split])

    def reject(
        self, reason: Reason, line: int | None, data_row_id: str | None, detail: str
    ) -> Rejection:
        """Count a rejected row and return its `Rejection` (whose reason is the plain string)."""
        code = reason.value
        self.rejected[code] = self.rejected.get(code, 0) + 1
        self._example(code, line, data_row_id, detail)
        return Rejection(code, line, data_row_id, detail)

    def warn(self, code: Reason, line: int | None, data_row_id: str | None, detail: str) -> None:
        """Count something dropped or changed inside a row that is otherwise kept."""
        key = code.value
        self.warnings[key] = self.warnings.get(key, 0) + 1
        self._example(key, line, data_row_id, detail)

    def record_written(self, split: Split, boxes: Sequence[PixelBox]) -> None:
        """Count a row that made it to the output, with its boxes and its classes."""
        self.rows_written += 1
        self.boxes_written += len(boxes)
        images = self._images_per_split[split]
        box_counts = self._boxes_per_split[split]
        if len(boxes) == 1:
            name = boxes[0][0]
            images[name] = images.get(name, 0) + 1
            box_counts[name] = box_counts.get(name, 0) + 1
            return
        for box in boxes:
            name = box[0]
            box_counts[name] = box_counts.get(name, 0) + 1
        for name in {box[0] for box in boxes}:
            images[name] = images.get(name, 0) + 1

    def blocker(self) -> str:
        """Why nothing was converted, naming the real blocker: no rows; no row with a box (no
        option can help); else the most frequent rejection, with the option that lifts it."""
        if self.rows_read == 0:
            return "the export has no rows"
        unreadable = self.rejected.get(Reason.MALFORMED_JSON, 0) + self.rejected.get(
            Reason.UNRECOGNIZED_ROW, 0
        )
        if self.rows_with_boxes == 0 and unreadable < self.rows_read:
            return (
                f"no row has a bounding box: the {self.rows_read - unreadable:,} rows read hold "
                "no ImageBoundingBox object (only classifications, other shapes or nothing); "
                "Vertex object detection trains on boxes"
            )
        reason, count = max(self.rejected.items(), key=lambda item: item[1])
        hint = _OPTION_THAT_LIFTS.get(reason, "")
        return f"all {self.rows_read:,} rows rejected, most as {reason} ({count:,}){hint}"

    def to_json(self) -> dict[str, Any]:
        """The ``--report`` document."""
        return {
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_with_boxes": self.rows_with_boxes,
            "boxes_written": self.boxes_written,
            "rejected": dict(sorted(self.rejected.items())),
            "warnings": dict(sorted(self.warnings.items())),
            "examples": {code: list(items) for code, items in sorted(self.examples.items())},
            "classes": self.classes,
        }

    def _example(self, code: str, line: int | None, data_row_id: str | None, detail: str) -> None:
        items = self.examples.setdefault(code, [])
        if len(items) < EXAMPLES_PER_CODE:
            items.append({"line": line, "data_row_id": data_row_id, "detail": detail})


def clip_text(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters for an example's detail."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


_OPTION_THAT_LIFTS: dict[str, str] = {
    Reason.NOT_IN_GCS: " (pass --image-uri-prefix gs://...)",
    Reason.UNASSIGNED_SPLIT: " (pass --unassigned auto or a split)",
    Reason.AMBIGUOUS_RUN: " (pass --model-run-id)",
}
