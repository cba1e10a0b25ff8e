"""Benchmark of `vmt demo` (issue 4): the local detector's quality on the synthetic test split
within its training budget, and the wall time of the whole demo.

    .venv/bin/python bench/demo.py                       # the demo defaults
    .venv/bin/python bench/demo.py --train-seconds 120   # a smaller budget

Runs ``vmt demo`` in a subprocess exactly as ``make demo`` does (generate the dataset, export ->
prepare -> train -> predict -> evaluate -> publish), then evaluates the TEST split alone from the
published ``predictions.ndjson`` with ``vmt.evaluation`` and, as the baseline measured in the
same run, with pycocotools on the same boxes (the ratio must be 1.000). Prints the training
figures from the run's events (epochs, why training stopped), the wall and CPU time of the
demo, and the load average (the dev machine is shared: the training budget is wall-clock time,
so a busier machine trains fewer epochs in it).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vmt.backends.local import DEFAULT_TRAIN_SECONDS  # noqa: E402
from vmt.domain import Box, Detection, Prediction, Sample, Split  # noqa: E402
from vmt.evaluation import evaluate  # noqa: E402
from vmt.formats.export_options import ExportOptions  # noqa: E402
from vmt.formats.labelbox_export import read_samples  # noqa: E402
from vmt.pipeline.store import RunStore  # noqa: E402
from vmt.synthetic import DEFAULT_IMAGES, DEFAULT_SEED  # noqa: E402

TARGET_AP50 = 0.90
MAX_TRAIN_SECONDS = 300.0


def read_published_predictions(path: Path) -> list[Prediction]:
    """Labelbox upload rows (one box each) grouped back into Predictions."""
    by_row: dict[str, list[Detection]] = {}
    for line in path.read_bytes().splitlines():
        row = orjson.loads(line)
        bbox = row["bbox"]
        box = Box.from_ltwh(row["name"], bbox["left"], bbox["top"], bbox["width"], bbox["height"])
        by_row.setdefault(row["dataRow"]["id"], []).append(Detection(box, row["confidence"]))
    return [Prediction(row_id, tuple(dets)) for row_id, dets in by_row.items()]


def pycocotools_ap(samples: list[Sample], predictions: list[Prediction]) -> tuple[float, float]:
    """(mAP@[.50:.95], AP50) by pycocotools on the same boxes."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from vmt.formats.coco import ground_truth_document, results_document

    classes = sorted({b.label for s in samples for b in s.boxes})
    image_ids = {s.data_row_id: i for i, s in enumerate(samples, 1)}
    category_ids = {name: k for k, name in enumerate(classes, 1)}
    wanted = [p for p in predictions if p.data_row_id in image_ids]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = ground_truth_document(samples, classes)
        gt.createIndex()
        dt = gt.loadRes(results_document(wanted, image_ids=image_ids, category_ids=category_ids))
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0]), float(evaluator.stats[1])


def training_events(state_dir: Path) -> dict[str, Any]:
    store = RunStore(state_dir / "runs.sqlite")
    try:
        (run,) = store.list_runs()
        events = store.events(run.id)
        finished = [e.data for e in events if e.message == "local training finished"]
        epochs = [e.data for e in events if e.message == "local training epoch"]
        return {
            "run_id": run.id,
            "finished": finished[-1] if finished else {},
            "epochs": epochs,
            "span": run.updated - run.created,
        }
    finally:
        store.close()


def run_demo(command: list[str], env: dict[str, str]) -> dict[str, float]:
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-4000:]
        sys.exit(f"vmt demo failed ({done.returncode}):\n{tail}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES)
    parser.add_argument("--train-seconds", type=float, default=DEFAULT_TRAIN_SECONDS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=None, help="keep the demo folder here")
    parser.add_argument(
        "--analyse-only", action="store_true", help="report on the demo already in --out"
    )
    args = parser.parse_args()
    if args.analyse_only and args.out is None:
        parser.error("--analyse-only needs --out")

    out = args.out or Path(tempfile.mkdtemp(prefix="vmt-bench-demo-"))
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src")
    env["VMT_STATE_DIR"] = str(out / "state")
    env["VMT_CONFIG"] = str(out / "absent-vmt.toml")
    command = [
        sys.executable, "-m", "vmt", "demo", "--out", str(out), "--images", str(args.images),
        "--train-seconds", str(args.train_seconds), "--seed", str(args.seed),
    ]  # fmt: skip
    timing_file = out / "bench-timing.json"
    if not args.analyse_only:
        timing = run_demo(command, env)
        timing_file.write_bytes(orjson.dumps(timing))
    timing = orjson.loads(timing_file.read_bytes()) if timing_file.exists() else {}
    training = training_events(out / "state")
    # without a timing file (a demo not run by this script): the run's own span, CPU unknown
    wall = timing.get("wall", training["span"])
    cpu = timing.get("cpu", float("nan"))
    load_before = timing.get("load_before", float("nan"))
    load_after = timing.get("load_after", float("nan"))

    export = out / "dataset" / "export.ndjson"
    samples = [s for s in read_samples(export, ExportOptions()) if isinstance(s, Sample)]
    test = [s for s in samples if s.split is Split.TEST]
    predictions = read_published_predictions(out / "results" / "predictions.ndjson")
    test_ids = {s.data_row_id for s in test}
    test_predictions = [p for p in predictions if p.data_row_id in test_ids]
    metrics = evaluate(test, test_predictions).to_json()
    summary: Any = metrics  # the headline figures (map, map_50, map_75) are top-level keys
    coco_map, coco_ap50 = pycocotools_ap(test, test_predictions)
    per_class = {name: round(c["ap_50"], 3) for name, c in summary["per_class"].items()}
    finished = training["finished"]
    val_curve = [round(e["val_ap50"], 3) for e in training["epochs"] if e["val_ap50"] is not None]

    ap50, coco_ratio = summary["map_50"], summary["map_50"] / coco_ap50
    report = [
        f"vmt demo --images {args.images} --train-seconds {args.train_seconds:g} "
        f"--seed {args.seed}",
        f"  dataset: {len(samples)} images; test split {len(test)} images, "
        f"{sum(len(s.boxes) for s in test)} boxes",
        f"  training: {finished.get('epochs')} epochs, best epoch {finished.get('best_epoch')}, "
        f"stopped by {finished.get('stopped')}; val AP50 per epoch {val_curve}",
        f"  TEST AP50 {ap50:.3f}  mAP@[.50:.95] {summary['map']:.3f}  AP75 "
        f"{summary['map_75']:.3f}; per class AP50 {per_class}",
        f"  baseline, pycocotools on the same boxes: AP50 {coco_ap50:.3f} mAP {coco_map:.3f} "
        f"(ratio vmt/pycocotools AP50 {coco_ratio:.3f})",
        f"  target ratio: AP50 {ap50:.3f} / {TARGET_AP50} = {ap50 / TARGET_AP50:.3f}; "
        f"training budget {args.train_seconds:g} s of {MAX_TRAIN_SECONDS:g} s allowed",
        f"  demo wall {wall:.0f} s, CPU {cpu:.0f} s ({cpu / wall:.1f} cores busy on average); "
        f"load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores",
        f"  results in {out}",
    ]
    print("\n".join(report))
    if not np.isfinite(summary["map_50"]) or summary["map_50"] < TARGET_AP50:
        sys.exit(1)


if __name__ == "__main__":
    main()
