"""TEMPORARY stand-in for the convert branch's module (same signature); replaced on merge."""

from __future__ import annotations

import orjson

from vmt.domain import Sample, Split

_ML_USE = "aiplatform.googleapis.com/ml_use"


def import_line(sample: Sample, image_uri: str) -> bytes:
    if not sample.width or not sample.height:
        raise ValueError(f"{sample.data_row_id}: image size unknown")
    w, h = sample.width, sample.height
    row: dict[str, object] = {
        "imageGcsUri": image_uri,
        "boundingBoxAnnotations": [
            {
                "displayName": b.label,
                "xMin": min(1.0, max(0.0, b.x0 / w)),
                "yMin": min(1.0, max(0.0, b.y0 / h)),
                "xMax": min(1.0, max(0.0, b.x1 / w)),
                "yMax": min(1.0, max(0.0, b.y1 / h)),
            }
            for b in sample.boxes
        ],
    }
    if sample.split is not Split.UNASSIGNED:
        row["dataItemResourceLabels"] = {_ML_USE: sample.split.value}
    return orjson.dumps(row) + b"\n"
