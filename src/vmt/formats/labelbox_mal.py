"""Model-assisted-labelling (MAL) pre-label rows for a Labelbox project (FORMATS.md 1.6).

The same NDJSON box rows as predictions (``uuid``, ``dataRow`` ``{id}``, ``name``, ``bbox``
top/left/height/width in pixels) but without ``confidence``: MAL does not accept it (the SDK
drops it with a warning). Only detections scoring at least the threshold become pre-labels, and
at most ``MAX_ANNOTATIONS_PER_ROW_AND_FEATURE`` per data row and class.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from vmt.domain import Prediction
from vmt.formats.labelbox_predictions import UuidFor, prediction_rows

MAX_ANNOTATIONS_PER_ROW_AND_FEATURE = 5000


def mal_rows(
    predictions: Iterable[Prediction], *, threshold: float, uuid_for: UuidFor
) -> Iterator[dict[str, Any]]:
    """Pre-label rows of the detections scoring ``>= threshold``. A detection keeps its index
    in its row's predictions for its uuid, so the same predictions give the same uuids
    whatever the threshold."""
    for prediction in predictions:
        per_class: Counter[str] = Counter()
        for row, det in zip(
            prediction_rows(prediction, uuid_for=uuid_for), prediction.detections, strict=True
        ):
            if det.score < threshold:
                continue
            per_class[det.box.label] += 1
            if per_class[det.box.label] > MAX_ANNOTATIONS_PER_ROW_AND_FEATURE:
                continue
            del row["confidence"]
            yield row
