"""Runs in a run store as the pipeline leaves them: finished (with real metrics.json, report
and rejections), failed, or running (a thread holds its lease and moves its progress)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import orjson

from tests.builders.detection_sets import random_dataset
from vmt.domain import Box, Detection, Prediction, Rejection, Sample, Split
from vmt.evaluation import evaluate, write_report_html
from vmt.pipeline import artifacts
from vmt.pipeline.lease import LeaseHolder
from vmt.pipeline.protocols import Stage
from vmt.pipeline.results import EvaluateResult, MetricsSummary
from vmt.pipeline.run_config import files_run_config
from vmt.pipeline.store import RunState, RunStore

XSS = "<script>window.__xss=1</script>"


def _config(label: str):  # type: ignore[no-untyped-def]
    return files_run_config(export=f"/data/{label}.ndjson", out_dir=f"/out/{label}")


def _rename(
    samples: list[Sample], predictions: list[Prediction], names: dict[str, str]
) -> tuple[list[Sample], list[Prediction]]:
    def box(b: Box) -> Box:
        return dataclasses.replace(b, label=names.get(b.label, b.label))

    return (
        [dataclasses.replace(s, boxes=tuple(box(b) for b in s.boxes)) for s in samples],
        [
            dataclasses.replace(
                p, detections=tuple(Detection(box(d.box), d.score) for d in p.detections)
            )
            for p in predictions
        ],
    )


def _draw_images(samples: list[Sample], folder: Path) -> list[Sample]:
    """A PNG of each sample's size in ``folder`` (its ground truth filled in), located there."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    located = []
    for i, sample in enumerate(samples):
        size = (sample.width or 100, sample.height or 100)
        image = Image.new("RGB", size, (200 - i % 5 * 20, 210, 220))
        draw = ImageDraw.Draw(image)
        for box in sample.boxes:
            draw.rectangle((box.x0, box.y0, box.x1, box.y1), fill=(90, 110, 140))
        path = folder / f"{sample.data_row_id}.png"
        image.save(path)
        located.append(dataclasses.replace(sample, image_uri=str(path)))
    return located


def finished_run(
    store: RunStore,
    *,
    seed: int,
    class_names: dict[str, str] | None = None,
    rejections: Sequence[Rejection] = (),
    run_id: str | None = None,
    images: int = 30,
    drawn: bool = True,
) -> str:
    """A COMPLETE run whose metrics.json and report come from ``evaluate`` on a random dataset
    (``images`` rows; with ``drawn``, an image of each in the run's ``images`` folder), with its
    samples.jsonl and predictions.jsonl."""
    run_id = store.create_run(_config(f"finished-{seed}"), run_id=run_id)
    samples, predictions, _ = random_dataset(seed, images=images, classes=4)
    samples, predictions = _rename(samples, predictions, class_names or {})
    run_dir = store.run_dir(run_id)
    if drawn:
        samples = _draw_images(samples, run_dir / "images")
    _finish(store, run_id, samples, predictions, rejections)
    return run_id


def shapes_run(
    store: RunStore, *, run_id: str, images: int = 40, seed: int = 3, model_seed: int = 0
) -> str:
    """A COMPLETE run on the synthetic shapes dataset (real images in the run folder) whose
    "model" finds most shapes with loose boxes, misses some, swaps some classes with
    confidence and sees shapes in the clutter: what the rows pages' screenshots show. Runs of
    the same ``seed`` share their images and data rows; ``model_seed`` varies the "model"."""
    from vmt.formats.labelbox_export import ExportOptions, read_samples
    from vmt.synthetic import CLASSES, generate_dataset

    run_id = store.create_run(_config("shapes"), run_id=run_id)
    export = generate_dataset(store.run_dir(run_id) / "images", images=images, seed=seed)
    samples = [
        dataclasses.replace(s, split=Split.VALIDATION)
        for s in read_samples(export, ExportOptions.ground_truth())
        if isinstance(s, Sample)
    ]
    rng = np.random.default_rng([seed, model_seed])
    predictions = []
    for sample in samples:
        found = []
        for box in sample.boxes:
            roll = rng.random()
            if roll < 0.15:
                continue
            label = box.label
            if roll > 0.9:
                label = str(rng.choice([c for c in CLASSES if c != box.label]))
            scale = np.array([box.width, box.height, box.width, box.height])
            jitter = rng.normal(0, 0.05 if roll < 0.75 else 0.2, 4) * scale
            x0, y0 = box.x0 + jitter[0], box.y0 + jitter[1]
            x1, y1 = box.x1 + jitter[2], box.y1 + jitter[3]
            found.append(
                Detection(
                    Box(
                        label, float(x0), float(y0), float(max(x1, x0 + 2)), float(max(y1, y0 + 2))
                    ),
                    float(rng.uniform(0.55, 0.99)),
                )
            )
        for _ in range(int(rng.poisson(0.6))):
            x, y = (
                rng.uniform(0, (sample.width or 200) - 40),
                rng.uniform(0, (sample.height or 200) - 40),
            )
            side = rng.uniform(20, 60)
            found.append(
                Detection(
                    Box(
                        str(rng.choice(CLASSES)),
                        float(x),
                        float(y),
                        float(x + side),
                        float(y + side),
                    ),
                    float(rng.uniform(0.3, 0.95)),
                )
            )
        predictions.append(Prediction(sample.data_row_id, tuple(found)))
    _finish(store, run_id, samples, predictions, ())
    return run_id


def _finish(
    store: RunStore,
    run_id: str,
    samples: list[Sample],
    predictions: list[Prediction],
    rejections: Sequence[Rejection],
) -> None:
    run_dir = store.run_dir(run_id)
    with artifacts.sample_writer(run_dir / artifacts.SAMPLES_FILE) as sample_out:
        for sample in samples:
            sample_out.write(sample)
    with artifacts.prediction_writer(run_dir / artifacts.PREDICTIONS_FILE) as prediction_out:
        for prediction in predictions:
            prediction_out.write(prediction)
    with artifacts.rejection_writer(run_dir / artifacts.REJECTIONS_FILE) as out:
        for rejection in rejections:
            out.write(rejection)
    by_reason: dict[str, int] = {}
    for rejection in rejections:
        by_reason[rejection.reason] = by_reason.get(rejection.reason, 0) + 1
    outputs = {
        Stage.EXPORT: {"export_bytes": 1234},
        Stage.PREPARE: {
            "rows": len(samples) + len(rejections),
            "samples": len(samples),
            "rejected": len(rejections),
            "boxes": sum(len(s.boxes) for s in samples),
            "rejections_by_reason": by_reason,
        },
        Stage.TRAIN: {"model": "/out/model.pt"},
        Stage.PREDICT: {"predicted_rows": len(predictions)},
    }
    evaluation = evaluate(samples, predictions)
    metrics = evaluation.to_json()
    (run_dir / artifacts.METRICS_FILE).write_bytes(orjson.dumps(metrics))
    write_report_html(evaluation, run_dir / artifacts.REPORT_FILE)
    for stage in Stage:
        store.start_stage(run_id, stage)
        store.finish_stage(run_id, stage, outputs.get(stage, {}))
    store.set_metrics(run_id, EvaluateResult(all=MetricsSummary.of_metrics(metrics)).to_json())
    store.set_run_state(run_id, RunState.COMPLETE)


def failed_run(store: RunStore, *, error: str, run_id: str | None = None) -> str:
    """A run that FAILED in prepare with ``error``."""
    run_id = store.create_run(_config("failed"), run_id=run_id)
    store.start_stage(run_id, Stage.EXPORT)
    store.finish_stage(run_id, Stage.EXPORT, {"export_bytes": 10})
    store.start_stage(run_id, Stage.PREPARE)
    store.fail_stage(run_id, Stage.PREPARE, error)
    store.add_error(run_id, stage=Stage.PREPARE, kind="InputError", message=error, retryable=False)
    store.add_event(run_id, "stage failed", stage=Stage.PREPARE, data={"error": error})
    store.set_run_state(run_id, RunState.FAILED, stage=Stage.PREPARE, error=error)
    return run_id


@contextmanager
def running_run(store: RunStore, *, total: int = 1000, step: int = 7) -> Iterator[str]:
    """A run in TRAIN whose lease a thread holds while it moves the progress every 0.2 s."""
    run_id = store.create_run(_config("running"))
    for stage in (Stage.EXPORT, Stage.PREPARE):
        store.start_stage(run_id, stage)
        store.finish_stage(run_id, stage, {"rows": 50} if stage is Stage.PREPARE else {})
    store.start_stage(run_id, Stage.TRAIN)
    holder = LeaseHolder.for_this_process()
    store.try_acquire_lease(run_id, holder, 30.0)
    stop = threading.Event()

    def move() -> None:
        done = 0
        while not stop.wait(0.2):
            done = min(total, done + step)
            store.set_progress(run_id, Stage.TRAIN, done, total)
            store.renew_lease(run_id, holder, 30.0)
            if store.cancel_requested(run_id):
                store.set_run_state(run_id, RunState.CANCELLED)
                break
        store.release_lease(run_id, holder)
        store.close_thread_connection()

    thread = threading.Thread(target=move, daemon=True)
    thread.start()
    try:
        yield run_id
    finally:
        stop.set()
        thread.join(5)
