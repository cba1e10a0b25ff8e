"""Builders of Labelbox export rows (model-run v2, project v2, legacy v1) as dicts or lines."""

from __future__ import annotations

from typing import Any

import orjson


def box_object(
    name: str = "car", left: Any = 10.0, top: Any = 20.0, width: Any = 30.0, height: Any = 40.0
) -> dict[str, Any]:
    """A v2 ImageBoundingBox object, geometry in pixels (left/top/width/height)."""
    return {
        "feature_id": "feat",
        "feature_schema_id": "schema",
        "name": name,
        "value": name.lower().replace(" ", "_"),
        "annotation_kind": "ImageBoundingBox",
        "classifications": [],
        "bounding_box": {"top": top, "left": left, "height": height, "width": width},
    }


def polygon_object(name: str = "road") -> dict[str, Any]:
    return {
        "feature_id": "feat-poly",
        "name": name,
        "annotation_kind": "ImagePolygon",
        "polygon": [{"x": 1.0, "y": 1.0}, {"x": 5.0, "y": 1.0}, {"x": 3.0, "y": 4.0}],
    }


def _media(width: Any, height: Any, mime_type: Any) -> dict[str, Any]:
    media: dict[str, Any] = {}
    if width is not None:
        media["width"] = width
    if height is not None:
        media["height"] = height
    if mime_type is not None:
        media["mime_type"] = mime_type
    return media


def model_run_row(
    data_row_id: str = "dr-1",
    *,
    objects: list[Any] | None = None,
    split: Any = "training",
    width: Any = 1000,
    height: Any = 500,
    mime_type: Any = "image/jpeg",
    row_data: Any = "gs://bucket/images/dr-1.jpg",
    run_id: str = "run-1",
    model_id: str = "model-1",
    extra_labels: list[list[Any]] | None = None,
    extra_runs: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A model-run export v2 row; ``objects`` default to one valid box."""
    labels = [
        {
            "id": "label-1",
            "annotations": {
                "objects": objects if objects is not None else [box_object()],
                "classifications": [],
                "relationships": [],
            },
        }
    ]
    for more in extra_labels or []:
        labels.append({"id": "label-x", "annotations": {"objects": more}})
    run: dict[str, Any] = {"name": "run", "labels": labels, "predictions": []}
    if split is not None:
        run["split"] = split
    runs = {run_id: run, **(extra_runs or {})}
    return {
        "data_row": {"id": data_row_id, "global_key": f"{data_row_id}.jpg", "row_data": row_data},
        "media_attributes": _media(width, height, mime_type),
        "experiments": {model_id: {"name": "model", "runs": runs}},
    }


def project_row(
    data_row_id: str = "dr-1",
    *,
    objects: list[Any] | None = None,
    width: Any = 1000,
    height: Any = 500,
    mime_type: Any = "image/jpeg",
    row_data: Any = "gs://bucket/images/dr-1.jpg",
    project_id: str = "project-1",
) -> dict[str, Any]:
    """A project export v2 row (no split: projects have none)."""
    return {
        "data_row": {"id": data_row_id, "row_data": row_data},
        "media_attributes": _media(width, height, mime_type),
        "projects": {
            project_id: {
                "name": "project",
                "labels": [
                    {
                        "id": "label-1",
                        "annotations": {
                            "objects": objects if objects is not None else [box_object()]
                        },
                    }
                ],
            }
        },
    }


def v1_row(
    data_row_id: str = "dr-1",
    *,
    objects: list[Any] | None = None,
    split: Any = "training",
    width: Any = 1000,
    height: Any = 500,
    mime_type: Any = "image/jpeg",
    row_data: Any = "gs://bucket/images/dr-1.jpg",
) -> dict[str, Any]:
    """A legacy export v1 row: ``Label.objects[].bbox``, class from ``title``."""
    if objects is None:
        objects = [
            {
                "title": "car",
                "value": "car",
                "schemaId": "s",
                "bbox": {"top": 20, "left": 10, "height": 40, "width": 30},
            }
        ]
    media: dict[str, Any] = {"width": width, "height": height, "mimeType": mime_type}
    row: dict[str, Any] = {
        "DataRow ID": data_row_id,
        "Labeled Data": row_data,
        "External ID": f"{data_row_id}.jpg",
        "Media Attributes": {k: v for k, v in media.items() if v is not None},
        "Label": {"objects": objects, "classifications": []},
    }
    if split is not None:
        row["Data Split"] = split
    return row


def lines(*rows: Any) -> list[bytes]:
    """NDJSON lines (bytes with a newline) for dicts; bytes are passed through as they are."""
    return [row if isinstance(row, bytes) else orjson.dumps(row) + b"\n" for row in rows]
