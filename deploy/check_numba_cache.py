"""Run inside the image with NUMBA_DEBUG_CACHE=1 (``make image-test``): evaluation and
conversion on a few rows, so numba says whether each kernel came from the image's cache."""

import subprocess
import sys
import tempfile
from pathlib import Path

from vmt.domain import Box, Detection, Prediction, Sample, Split
from vmt.evaluation import evaluate

samples = [
    Sample(
        data_row_id=f"row-{i}",
        image_uri=f"gs://b/{i}.png",
        width=100,
        height=100,
        split=Split.VALIDATION,
        boxes=(Box("car", 10, 10, 50, 50),),
    )
    for i in range(3)
]
predictions = [Prediction(s.data_row_id, (Detection(s.boxes[0], 0.9),)) for s in samples]
print("mAP", evaluate(samples, predictions).to_json()["map"])

with tempfile.TemporaryDirectory() as tmp:
    export = Path(tmp) / "export.ndjson"
    export.write_text(
        '{"data_row": {"id": "r1", "row_data": "gs://b/r1.png"}, '
        '"media_attributes": {"width": 100, "height": 100, "mime_type": "image/png"}, '
        '"experiments": {"e": {"runs": {"m": {"split": "training", "labels": [{"annotations": '
        '{"objects": [{"name": "car", "annotation_kind": "ImageBoundingBox", '
        '"bounding_box": {"top": 1, "left": 1, "height": 20, "width": 20}}]}}]}}}}}\n'
    )
    subprocess.run(
        [sys.executable, "-m", "vmt", "convert", str(export), "-o", f"{tmp}/out.jsonl"],
        check=False,
    )
