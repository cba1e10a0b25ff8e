"""Every reason code the package reports: why a row, a box, a prediction or an image was left out
or changed.

One `StrEnum`, so a code is spelt once and compares equal to its string (reports, JSON files
and the run store keep the plain strings). The README's "Reason codes" table lists every member;
a test keeps the two equal.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # Export rows (Labelbox export NDJSON / JSON array), in the order the checks run.
    MALFORMED_JSON = "malformed_json"
    UNRECOGNIZED_ROW = "unrecognized_row"
    AMBIGUOUS_RUN = "ambiguous_run"
    DUPLICATE_ROW = "duplicate_row"
    NOT_AN_IMAGE = "not_an_image"
    MISSING_DIMENSIONS = "missing_dimensions"
    UNASSIGNED_SPLIT = "unassigned_split"
    TOO_MANY_BOXES = "too_many_boxes"
    UNLABELLED_ROW = "unlabelled_row"
    NO_BOXES = "no_boxes"
    NOT_IN_GCS = "not_in_gcs"

    # Objects inside a kept export row (warnings).
    BOX_INVALID = "box_invalid"
    BOX_DEGENERATE = "box_degenerate"
    BOX_TOO_SMALL = "box_too_small"
    BOX_CLIPPED = "box_clipped"
    UNSUPPORTED_ANNOTATION = "unsupported_annotation"

    # Predictions (Labelbox NDJSON, Vertex batch output, COCO results).
    MALFORMED_ROW = "malformed_row"
    MISSING_DATA_ROW = "missing_data_row"
    NOT_A_BOX = "not_a_box"
    MISSING_NAME = "missing_name"
    INVALID_CONFIDENCE = "invalid_confidence"
    MISSING_CONFIDENCE = "missing_confidence"
    UNKNOWN_CLASS = "unknown_class"
    UNKNOWN_DATA_ROW = "unknown_data_row"
    ROW_NOT_IN_EVALUATED_SPLITS = "row_not_in_evaluated_splits"
    ON_UNLABELLED_ROW = "on_unlabelled_row"
    PREDICTION_FAILED = "prediction_failed"
    AMBIGUOUS_IMAGE = "ambiguous_image"

    # COCO ground truth.
    MALFORMED_ANNOTATION = "malformed_annotation"
    MALFORMED_IMAGE = "malformed_image"
    UNKNOWN_IMAGE = "unknown_image"

    # COCO ground truth kept, with a warning.
    ANNOTATION_ID_ZERO = "annotation_id_zero"

    # Images, while a backend stages or reads them.
    IMAGE_FETCH_FAILED = "image_fetch_failed"
    IMAGE_UPLOAD_FAILED = "image_upload_failed"
    IMAGE_CONVERSION_FAILED = "image_conversion_failed"
    IMAGE_NOT_SUPPORTED = "image_not_supported"
    IMAGE_MISSING = "image_missing"
    IMAGE_UNREADABLE = "image_unreadable"
    IMAGE_URI_UNSUPPORTED = "image_uri_unsupported"
    IMAGE_LOCATION_REFUSED = "image_location_refused"
    IMAGE_SIZE_MISMATCH = "image_size_mismatch"


EXPORT_ROW_CHECKS: tuple[Reason, ...] = (
    Reason.MALFORMED_JSON,
    Reason.UNRECOGNIZED_ROW,
    Reason.AMBIGUOUS_RUN,
    Reason.DUPLICATE_ROW,
    Reason.NOT_AN_IMAGE,
    Reason.MISSING_DIMENSIONS,
    Reason.UNASSIGNED_SPLIT,
    Reason.TOO_MANY_BOXES,
    Reason.UNLABELLED_ROW,
    Reason.NO_BOXES,
    Reason.NOT_IN_GCS,
)
"""Every export row rejection, in the order the checks run (``not_in_gcs`` by ``vmt convert``)."""

BOX_WARNINGS: tuple[Reason, ...] = (
    Reason.BOX_INVALID,
    Reason.BOX_DEGENERATE,
    Reason.BOX_TOO_SMALL,
    Reason.BOX_CLIPPED,
    Reason.UNSUPPORTED_ANNOTATION,
)
"""Per-object warnings inside a row that is kept."""
