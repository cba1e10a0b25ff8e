"""How to read a Labelbox export (``ExportOptions``) and the split rule for rows without one.

The profiles are named for their callers: the defaults are ``vmt convert``'s rules,
``ground_truth()`` evaluation's, ``pool()`` the rows a model predicts on. ``split_for_unassigned``
is the one rule for rows without a split, used by the parser and by the Labelbox source when it
gives a model run's unassigned rows a split (and writes it back).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from vmt.domain import Split

__all__ = ["UNASSIGNED_POLICIES", "ExportOptions", "auto_split", "split_for_unassigned"]

UNASSIGNED_POLICIES = ("skip", "training", "validation", "test", "auto")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """How to read an export. The defaults are ``vmt convert``'s rules."""

    model_run_id: str | None = None
    """Which run to read when a row lists several (also matches a project id)."""
    unassigned: str = "skip"
    """Rows without a split: skip (reject), training/validation/test, or auto (hash of id)."""
    require_dimensions: bool = True
    """False: keep rows without width/height (Sample.width/height None, boxes not clipped)."""
    require_boxes: bool = True
    """False: keep rows with no boxes (rows to predict on or to evaluate)."""
    keep_unassigned: bool = False
    """True: with ``unassigned="skip"``, yield unassigned rows as Split.UNASSIGNED instead."""
    vertex_limits: bool = True
    """False: keep boxes under Vertex's minimum size (1% of the image side, 8 x 8 px) and rows
    over its 500-box limit: ground truth for evaluation keeps every labelled object; only
    Vertex training needs them gone."""
    rows_without_labels: bool = False
    """True: a v2 row with no model-run or project section (a catalog export's row that is in
    no exported project) is a row without boxes instead of an ``unrecognized_row``."""
    require_label: bool = False
    """True (ground truth): a v2 row whose run or project section holds no label (``labels``
    empty or absent: a row still to label in a project export taken mid-labelling) is an
    ``unlabelled_row``, not an image with no objects; a label with no objects stays one."""

    @classmethod
    def ground_truth(cls, model_run_id: str | None = None) -> ExportOptions:
        """The rules for evaluation ground truth (``vmt evaluate`` and the pipeline's evaluate
        stage): every labelled box of every row, with or without a split, size or box; a row
        with no label is not ground truth (``unlabelled_row``)."""
        return cls(
            model_run_id=model_run_id,
            require_dimensions=False,
            require_boxes=False,
            keep_unassigned=True,
            vertex_limits=False,
            require_label=True,
        )

    @classmethod
    def pool(cls) -> ExportOptions:
        """The rules for a pool (rows to predict on): every row with an image, with or without
        a split, size, box or label section."""
        return cls(
            require_dimensions=False,
            require_boxes=False,
            keep_unassigned=True,
            rows_without_labels=True,
        )

    def __post_init__(self) -> None:
        if self.unassigned not in UNASSIGNED_POLICIES:
            raise ValueError(
                f"unassigned must be one of {', '.join(UNASSIGNED_POLICIES)}, "
                f"got {self.unassigned!r}"
            )


def auto_split(data_row_id: str) -> Split:
    """``int(sha256(id).hexdigest(), 16) % 10``: 0-7 training, 8 validation, 9 test."""
    bucket = int(hashlib.sha256(data_row_id.encode("utf-8")).hexdigest(), 16) % 10
    if bucket < 8:
        return Split.TRAINING
    return Split.VALIDATION if bucket == 8 else Split.TEST


def split_for_unassigned(policy: str, data_row_id: str) -> Split:
    """The split a row without one gets under ``policy`` (one of ``UNASSIGNED_POLICIES``):
    ``auto`` -> ``auto_split``, ``training``/``validation``/``test`` -> that split, ``skip`` ->
    ``Split.UNASSIGNED`` (the row is left out, or kept unassigned for prediction)."""
    if policy == "auto":
        return auto_split(data_row_id)
    if policy == "skip":
        return Split.UNASSIGNED
    return Split(policy)
