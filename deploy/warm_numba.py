"""Compile the numba kernels into the image's cache at build time (``NUMBA_CACHE_DIR``), so no
service request or pipeline step pays the JIT: evaluation on a tiny synthetic set, and
``vmt convert`` on its export. Run by the Dockerfile; prints what it compiled and how long."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vmt.domain import Detection, Prediction, Sample
from vmt.evaluation import evaluate
from vmt.formats.labelbox_export import ExportOptions, read_samples
from vmt.synthetic import generate_dataset


def main() -> None:
    cache = os.environ.get("NUMBA_CACHE_DIR")
    if not cache:
        sys.exit("NUMBA_CACHE_DIR must be set: the cache goes into the image")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        export = generate_dataset(Path(tmp) / "data", images=12, seed=0)
        samples = [
            s
            for s in read_samples(export, ExportOptions(require_dimensions=False))
            if isinstance(s, Sample)
        ]
        predictions = [
            Prediction(s.data_row_id, tuple(Detection(box, 0.9) for box in s.boxes))
            for s in samples
        ]
        result = evaluate(samples, predictions).to_json()
        assert result["map"] == 1.0, result["map"]
        subprocess.run(
            [sys.executable, "-m", "vmt", "convert", str(export), "-o", f"{tmp}/import.jsonl",
             "--image-uri-prefix", "gs://warm-up/images/"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    files = sum(1 for _ in Path(cache).rglob("*.nbi"))
    print(f"numba cache: {files} kernel index files in {cache}, compiled in {seconds:.1f} s")
    if files == 0:
        sys.exit("no numba kernel was cached")


if __name__ == "__main__":
    main()
