"""Benchmark: `vmt evaluate` vs faster-coco-eval vs pycocotools on one synthetic data set.

    .venv/bin/python bench/evaluate.py [--images 20000] [--seed 0] [--repeat 3] [--no-pycocotools]
    .venv/bin/python bench/evaluate.py --referee [--images 200000]


One run writes the same synthetic set (5 classes, ~6 ground-truth boxes and ~10 detections per
image) as Labelbox files (model-run export NDJSON + prediction NDJSON) and as COCO files (ground
truth + results), then times:

- `vmt evaluate` end to end in a fresh process (interpreter start, reading the Labelbox files,
  every metric, writing metrics.json): once with an empty numba cache (JIT compile included),
  then `--repeat` times with the cache warm (best reported);
- faster-coco-eval from the COCO files (load + evaluate + accumulate + summarize), in-process,
  best of `--repeat`;
- pycocotools the same way, once.

It prints the ratio faster-coco-eval / vmt (target >= 2) and checks that the three agree.

``--referee`` times nothing: it runs `vmt evaluate` once on the Labelbox files and once on the
COCO files and pycocotools once on the COCO files, and prints all twelve COCO stats of each
with the largest difference (exit status 1 unless all are equal).
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
CLASSES = ("car", "person", "bicycle", "dog", "traffic_light")
SIZES = ((640, 480), (1280, 720), (800, 600), (1024, 1024))


def make_dataset(out: Path, *, images: int, seed: int) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    paths = {
        "export": out / "export.ndjson",
        "predictions": out / "predictions.ndjson",
        "coco_gt": out / "coco_gt.json",
        "coco_results": out / "coco_results.json",
    }
    coco_images: list[dict[str, Any]] = []
    coco_anns: list[dict[str, Any]] = []
    coco_results: list[dict[str, Any]] = []
    with paths["export"].open("wb") as export, paths["predictions"].open("wb") as preds:
        for i in range(images):
            width, height = SIZES[int(rng.integers(len(SIZES)))]
            row_id = f"clrow{i:08d}"
            key = f"img-{i:06d}.jpg"
            objects = []
            gt_boxes = []
            for _ in range(int(rng.poisson(6))):
                w = round(float(rng.uniform(0.02, 0.4) * width), 1)
                h = round(float(rng.uniform(0.02, 0.4) * height), 1)
                left = round(float(rng.uniform(0, width - w)), 1)
                top = round(float(rng.uniform(0, height - h)), 1)
                name = CLASSES[int(rng.integers(len(CLASSES)))]
                gt_boxes.append((name, left, top, w, h))
                objects.append(
                    {
                        "feature_id": f"f{i}-{len(objects)}",
                        "name": name,
                        "annotation_kind": "ImageBoundingBox",
                        "bounding_box": {"top": top, "left": left, "height": h, "width": w},
                    }
                )
                coco_anns.append(
                    {
                        "id": len(coco_anns) + 1,
                        "image_id": i + 1,
                        "category_id": CLASSES.index(name) + 1,
                        "bbox": [left, top, w, h],
                        "area": w * h,
                        "iscrowd": 0,
                    }
                )
            split = "validation" if i % 2 else "test"
            run = {
                "name": "bench run",
                "split": split,
                "labels": [
                    {
                        "id": f"label{i}",
                        "annotations": {
                            "objects": objects,
                            "classifications": [],
                            "relationships": [],
                        },
                    }
                ],
                "predictions": [],
            }
            row = {
                "data_row": {
                    "id": row_id,
                    "global_key": key,
                    "row_data": f"https://example.invalid/{key}",
                },
                "media_attributes": {"width": width, "height": height, "mime_type": "image/jpeg"},
                "experiments": {"model-1": {"name": "bench", "runs": {"run-1": run}}},
            }
            export.write(orjson.dumps(row) + b"\n")
            coco_images.append({"id": i + 1, "file_name": key, "width": width, "height": height})
            dets = []
            for name, left, top, w, h in gt_boxes:
                if rng.random() < 0.85:
                    jitter = [float(v) for v in rng.normal(0, 0.06, 4) * np.array([w, h, w, h])]
                    label = name if rng.random() < 0.9 else CLASSES[int(rng.integers(5))]
                    dl = min(max(0.0, left + jitter[0]), width - 2)
                    dt = min(max(0.0, top + jitter[1]), height - 2)
                    dw = min(max(1.0, w + jitter[2]), width - dl)
                    dh = min(max(1.0, h + jitter[3]), height - dt)
                    score = float(np.clip(rng.beta(5, 2), 0, 1))
                    dets.append((label, dl, dt, dw, dh, score))
            for _ in range(max(0, int(rng.poisson(10)) - len(dets))):
                dw = float(rng.uniform(0.02, 0.3) * width)
                dh = float(rng.uniform(0.02, 0.3) * height)
                dl = float(rng.uniform(0, width - dw))
                dt = float(rng.uniform(0, height - dh))
                dets.append((CLASSES[int(rng.integers(5))], dl, dt, dw, dh, float(rng.beta(2, 5))))
            for j, (label, dl, dt, dw, dh, score) in enumerate(dets):
                dl, dt, dw, dh, score = (round(v, 2) for v in (dl, dt, dw, dh, score))
                preds.write(
                    orjson.dumps(
                        {
                            "uuid": f"00000000-0000-4000-8000-{i:06d}{j:06d}",
                            "dataRow": {"id": row_id},
                            "name": label,
                            "bbox": {"top": dt, "left": dl, "height": dh, "width": dw},
                            "confidence": score,
                        }
                    )
                    + b"\n"
                )
                coco_results.append(
                    {
                        "image_id": i + 1,
                        "category_id": CLASSES.index(label) + 1,
                        "bbox": [dl, dt, dw, dh],
                        "score": score,
                    }
                )
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(CLASSES)]
    paths["coco_gt"].write_bytes(
        orjson.dumps({"images": coco_images, "annotations": coco_anns, "categories": categories})
    )
    paths["coco_results"].write_bytes(orjson.dumps(coco_results))
    return paths


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_vmt(
    paths: dict[str, Path], out: Path, cache_dir: Path, *, inputs: tuple[str, str] | None = None
) -> tuple[float, float, dict[str, Any]]:
    """(wall seconds, CPU seconds, metrics) of one `vmt evaluate` process on ``inputs`` (keys of
    ``paths``; default the Labelbox files)."""
    gt_key, pred_key = inputs or ("export", "predictions")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["NUMBA_CACHE_DIR"] = str(cache_dir)
    metrics = out / "metrics.json"
    cmd = [
        sys.executable, "-m", "vmt", "evaluate",
        "--ground-truth", str(paths[gt_key]),
        "--predictions", str(paths[pred_key]),
        "-o", str(metrics),
    ]  # fmt: skip
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    return elapsed, _children_cpu() - cpu, orjson.loads(metrics.read_bytes())


def run_coco(library: str, paths: dict[str, Path]) -> tuple[float, float, np.ndarray]:
    """(wall seconds, CPU seconds, stats) of loading both COCO files and evaluating."""
    if library == "faster-coco-eval":
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Eval
    else:
        from pycocotools.coco import COCO  # type: ignore[no-redef]
        from pycocotools.cocoeval import COCOeval as Eval  # type: ignore[assignment]
    cpu = time.process_time()
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(paths["coco_gt"]))
        dt = gt.loadRes(str(paths["coco_results"]))
        ev = Eval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return time.perf_counter() - start, time.process_time() - cpu, np.asarray(ev.stats)


KEYS = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large",
        "mar_1", "mar_10", "mar_100")  # fmt: skip
ALL_KEYS = (*KEYS, "mar_small", "mar_medium", "mar_large")
"""pycocotools' twelve ``stats``, in its order, by our names."""


def referee(paths: dict[str, Path], work: Path) -> bool:
    """All twelve stats of vmt (Labelbox files, COCO files) and pycocotools; True if equal."""
    cache = work / "numba-cache"
    rows = {}
    for name, inputs in (
        ("vmt, Labelbox files", None),
        ("vmt, COCO files", ("coco_gt", "coco_results")),
    ):
        wall, _, metrics = run_vmt(paths, work, cache, inputs=inputs)
        rows[name] = np.asarray([-1.0 if metrics[k] is None else metrics[k] for k in ALL_KEYS])
        print(f"{name}: {wall:.1f} s", flush=True)
    wall, _, stats = run_coco("pycocotools", paths)
    rows["pycocotools"] = stats
    print(f"pycocotools: {wall:.1f} s")
    print(f"{'':<22}" + " ".join(f"{k:>10}" for k in ALL_KEYS))
    for name, values in rows.items():
        print(f"{name:<22}" + " ".join(f"{v:10.6f}" for v in values))
    equal = True
    for name in ("vmt, Labelbox files", "vmt, COCO files"):
        diff = np.abs(rows[name] - stats)
        worst = ALL_KEYS[int(np.argmax(diff))]
        same = int((rows[name] == stats).sum())
        print(
            f"{name} vs pycocotools: {same}/12 bit-for-bit equal, "
            f"max |diff| {diff.max():.2e} ({worst})"
        )
        equal = equal and bool(diff.max() <= 1e-12)
    return equal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-pycocotools", action="store_true")
    parser.add_argument("--referee", action="store_true", help="all 12 stats vs pycocotools")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vmt-bench-eval-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        paths = make_dataset(work, images=args.images, seed=args.seed)
        n_gt = sum(1 for _ in paths["export"].open("rb"))
        n_pred = sum(1 for _ in paths["predictions"].open("rb"))
        print(
            f"data set: {args.images} images ({n_gt} export rows), {n_pred} prediction rows, "
            f"written in {time.perf_counter() - start:.1f} s"
        )
        if args.referee:
            sys.exit(0 if referee(paths, work) else 1)
        cache = work / "numba-cache"
        cold_wall, cold_cpu, metrics = run_vmt(paths, work, cache)
        vmt_runs, fce_runs = [], []
        for _ in range(args.repeat):  # interleaved: both see the same machine load
            vmt_runs.append(run_vmt(paths, work, cache)[:2])
            fce_runs.append(run_coco("faster-coco-eval", paths))
        fce_stats = fce_runs[0][2]
        vmt_wall, vmt_cpu = min(r[0] for r in vmt_runs), min(r[1] for r in vmt_runs)
        fce_wall, fce_cpu = min(r[0] for r in fce_runs), min(r[1] for r in fce_runs)
        rows = [
            ("vmt evaluate, end to end, numba cache cold (JIT compile included)", cold_wall,
             cold_cpu),
            ("vmt evaluate, end to end, numba cache warm (best)", vmt_wall, vmt_cpu),
            ("faster-coco-eval, mAP only, in-process (best)", fce_wall, fce_cpu),
        ]  # fmt: skip
        pyc_stats = None
        if not args.no_pycocotools:
            pyc_wall, pyc_cpu, pyc_stats = run_coco("pycocotools", paths)
            rows.append(("pycocotools, mAP only, in-process", pyc_wall, pyc_cpu))
        print(f"{'':<70} {'wall s':>8} {'CPU s':>8}")
        for name, wall, cpu in rows:
            print(f"{name:<70} {wall:8.2f} {cpu:8.2f}")
        print(
            f"faster-coco-eval / vmt (warm): {fce_wall / vmt_wall:.2f}x wall, "
            f"{fce_cpu / vmt_cpu:.2f}x CPU (target >= 2)"
        )
        print(
            f"faster-coco-eval / vmt (cold): {fce_wall / cold_wall:.2f}x wall, "
            f"{fce_cpu / cold_cpu:.2f}x CPU"
        )
        if not args.no_pycocotools:
            print(
                f"pycocotools / vmt (warm): {pyc_wall / vmt_wall:.1f}x wall, "
                f"{pyc_cpu / vmt_cpu:.1f}x CPU"
            )
        ours = np.asarray([metrics[k] for k in KEYS], dtype=float)
        print("vmt     ", " ".join(f"{v:.6f}" for v in ours))
        print("fce     ", " ".join(f"{v:.6f}" for v in fce_stats[:9]))
        diffs = {"faster-coco-eval": float(np.max(np.abs(ours - fce_stats[:9])))}
        if pyc_stats is not None:
            print("pycoco  ", " ".join(f"{v:.6f}" for v in pyc_stats[:9]))
            diffs["pycocotools"] = float(np.max(np.abs(ours - pyc_stats[:9])))
        for name, diff in diffs.items():
            print(f"max |vmt - {name}| over the 9 headline numbers: {diff:.2e}")


if __name__ == "__main__":
    main()
