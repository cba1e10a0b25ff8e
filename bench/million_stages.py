"""The stages of ``bench/million_rows.py``, each run by that script in a child process of its
own (``python bench/million_stages.py <stage> ...``), which prints one JSON line: wall and CPU
seconds of the stage alone, the process's peak RSS, its RSS once the imports were done, and the
row counts the stage saw (``in`` = ``written`` + ``rejected``).

The synthetic model run (``export_rows``): ``--rows`` rows in the fake Labelbox, 80% training,
10% validation, 10% test, two boxes each, images named by ``gs://`` URI and never read (tiny:
the export's media attributes give the size). 5% have a video mime type (the parser rejects
them) and 5% no size (the bench trainer rejects them), so a 1M-row run leaves 100k rows out.
The bench trainer (``ImportFileTrainer``) writes the AutoML import file in ``prepare`` (the
image used in place: no staging, measured apart on a sample by ``bench/staging.py``), trains
nothing, and predicts each validation/test row's boxes moved by a few pixels plus one false
box; one row in 500 fails to predict.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

MODEL_RUN = "mr-million"
RUN_ID = "run-million"
CLASSES = ("car", "person", "bicycle", "dog", "truck")
WIDTH, HEIGHT = 640, 480
NOT_AN_IMAGE_EVERY = 20
NO_SIZE_EVERY = 20
FAILED_PREDICTION_EVERY = 500


def _split(i: int) -> str:
    return {8: "validation", 9: "test"}.get(i % 10, "training")


def export_rows(n: int) -> Iterator[dict[str, Any]]:
    """The model run's export rows (export v2 shape, as the fake serves them)."""
    from tests.fakes.labelbox_server import make_export_row

    for i in range(n):
        boxes = (
            (CLASSES[i % 5], 10.0 + i % 50, 20.0 + i % 40, 60.0, 50.0),
            (CLASSES[(i + 2) % 5], 200.0, 150.0, 80.0 + i % 30, 90.0),
        )
        row = make_export_row(
            i,
            model_run_id=MODEL_RUN,
            split=_split(i),
            boxes=boxes,
            row_data=f"gs://bench-images/img-{i:07d}.jpg",
            width=WIDTH,
            height=HEIGHT,
        )
        row["data_row"]["id"] = f"dr-{i:07d}"
        if i % NOT_AN_IMAGE_EVERY == 3:
            row["media_attributes"]["mime_type"] = "video/mp4"
        elif i % NO_SIZE_EVERY == 13:
            row["media_attributes"] = {"mime_type": "image/jpeg"}
        yield row


class ImportFileTrainer:
    """Writes Vertex AutoML's import file in ``prepare``; predicts from the ground truth."""

    name = "bench"

    def prepare(self, ctx: Any, samples: Iterable[Any]) -> Iterator[Any]:
        from vmt.domain import Rejection
        from vmt.durable_files import atomic_writer
        from vmt.formats.vertex import import_line
        from vmt.reasons import Reason

        with atomic_writer(ctx.workdir / "vertex_import.jsonl") as out:
            for sample in samples:
                if sample.width is None or sample.height is None:
                    detail = "no image size in the export (the bench reads no image)"
                    yield Rejection(
                        Reason.MISSING_DIMENSIONS, sample.line, sample.data_row_id, detail
                    )
                    continue
                out.write(import_line(sample, sample.image_uri))
                yield sample

    def train(self, ctx: Any, samples: Iterable[Any]) -> Any:
        from vmt.pipeline.protocols import Trained

        return Trained(model="bench-model")

    def predict(self, ctx: Any, model: str, samples: Iterable[Any]) -> Any:
        from vmt.pipeline.protocols import Predicted

        return Predicted(rows=(self._predict(s) for s in samples))

    def cancel(self, ctx: Any) -> None:
        return None

    @staticmethod
    def _predict(sample: Any) -> Any:
        from vmt.domain import Box, Detection, Prediction, Rejection
        from vmt.reasons import Reason

        index = int(sample.data_row_id.rsplit("-", 1)[1])
        if index % FAILED_PREDICTION_EVERY == 8:
            return Rejection(Reason.PREDICTION_FAILED, None, sample.data_row_id, "bench failure")
        shift = float(index % 7 - 3)
        found = [
            Detection(Box(b.label, b.x0 + shift, b.y0 - shift, b.x1 + shift, b.y1), 0.55 + k / 10)
            for k, b in enumerate(sample.boxes)
        ]
        found.append(Detection(Box(CLASSES[index % 5], 400.0, 300.0, 460.0, 360.0), 0.3))
        return Prediction(sample.data_row_id, tuple(found))


# --- the stages -----------------------------------------------------------------------------
def _settings(args: argparse.Namespace) -> Any:
    from tests.fakes.labelbox_server import API_KEY

    from vmt.config import load_settings

    return load_settings(
        state_dir=Path(args.work) / "state",
        labelbox_api_key=API_KEY,
        labelbox_endpoint=args.endpoint or "http://127.0.0.1:9/graphql",
        labelbox_poll_seconds=0.05,
    )


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


class _Run:
    """The run in the bench's run store, one stage at a time (as the runner records it)."""

    def __init__(self, args: argparse.Namespace, stage: str) -> None:
        from vmt.pipeline.context import StoreRunContext
        from vmt.pipeline.protocols import Stage
        from vmt.pipeline.run_config import labelbox_run_config
        from vmt.pipeline.stages import RunPaths
        from vmt.pipeline.store import RunStore

        self.settings = _settings(args)
        self.store = RunStore.for_settings(self.settings)
        if not any(r.id == RUN_ID for r in self.store.list_runs(limit=5)):
            self.store.create_run(labelbox_run_config(model_run_id=MODEL_RUN), run_id=RUN_ID)
        self.stage = Stage(stage)
        self.ctx = StoreRunContext(self.store, RUN_ID)
        self.ctx.stage = self.stage
        self.paths = RunPaths(self.store.run_dir(RUN_ID))

    def start(self) -> None:
        self.store.start_stage(RUN_ID, self.stage)

    def finish(self, result: Any) -> None:
        self.store.finish_stage(RUN_ID, self.stage, result.to_json())


def stage_export(args: argparse.Namespace, run: _Run) -> dict[str, int]:
    from vmt.backends.labelbox.source import LabelboxSource
    from vmt.pipeline.stages import export_stage

    run.finish(
        export_stage(LabelboxSource(run.settings, MODEL_RUN), run.ctx, dest=run.paths.export)
    )
    return {"in": args.rows, "written": lambda: _count_lines(run.paths.export), "rejected": 0}


def stage_parse(args: argparse.Namespace, run: _Run) -> dict[str, int]:
    """The anchor of the export: orjson parsing the exported file's lines, nothing else."""
    rows = 0
    with run.paths.export.open("rb") as lines:
        for line in lines:
            orjson.loads(line)
            rows += 1
    return {"in": rows, "written": rows, "rejected": 0}


def stage_prepare(args: argparse.Namespace, run: _Run) -> dict[str, int]:
    from vmt.pipeline.stages import prepare_stage

    result = prepare_stage(
        ImportFileTrainer(),  # type: ignore[arg-type]
        run.ctx,
        export=run.paths.export,
        locate_image=str,
        samples_out=run.paths.samples,
        rejections_out=run.paths.rejections,
        unassigned="skip",
    )
    run.finish(result)
    imported = lambda: _count_lines(run.paths.root / "vertex_import.jsonl")  # noqa: E731
    return {
        "in": result.rows,
        "written": result.samples,
        "rejected": result.rejected,
        "import_file_lines": imported,
    }


def stage_predict(args: argparse.Namespace, run: _Run) -> dict[str, int]:
    from vmt.pipeline.artifacts import SampleFile
    from vmt.pipeline.stages import predict_stage

    samples = SampleFile(run.paths.samples)
    result = predict_stage(
        ImportFileTrainer(),  # type: ignore[arg-type]
        run.ctx,
        model="bench-model",
        samples=samples,
        predictions_out=run.paths.predictions,
        labelbox_out=run.paths.labelbox_predictions,
    )
    run.finish(result)
    written = result.predicted_rows  # type: ignore[union-attr]
    return {"in": _evaluated_rows(run), "written": written, "rejected": result.failed_rows}  # type: ignore[union-attr]


def stage_evaluate(args: argparse.Namespace, run: _Run) -> dict[str, int]:
    from vmt.pipeline.artifacts import SampleFile
    from vmt.pipeline.results import PredictResult
    from vmt.pipeline.stages import evaluate_stage

    samples = SampleFile(run.paths.samples)
    predicted = run.store.result(RUN_ID, PredictResult)
    result = evaluate_stage(
        run.ctx,
        trainer_name="bench",
        samples=samples,
        predictions=run.paths.predictions,
        metrics_out=run.paths.metrics,
        report_out=run.paths.report,
        row_metrics_out=run.paths.row_metrics,
        predicted=predicted,
    )
    run.finish(result)

    def evaluated() -> int:
        with run.paths.row_metrics.open("rb") as lines:
            return sum(1 for line in lines if b'"metricName":"error_score"' in line)

    return {
        "in": _evaluated_rows(run),
        "written": evaluated,
        "rejected": predicted.failed_rows,
        "row_metric_lines": lambda: _count_lines(run.paths.row_metrics),
    }


def _evaluated_rows(run: _Run) -> int:
    from vmt.pipeline.results import PrepareResult

    by_split = run.store.result(RUN_ID, PrepareResult).by_split
    return by_split.get("validation", 0) + by_split.get("test", 0)


def stage_coco_files(args: argparse.Namespace, run: _Run) -> dict[str, int]:
    """(untimed set-up) The evaluated rows and predictions as COCO files for the anchor."""
    from vmt.pipeline.artifacts import SampleFile, read_predictions
    from vmt.pipeline.stages import EVALUATED_SPLITS

    ids = {name: k + 1 for k, name in enumerate(CLASSES)}
    images, anns, image_of = [], [], {}
    for sample in SampleFile(run.paths.samples).only(*EVALUATED_SPLITS):
        image_of[sample.data_row_id] = len(images) + 1
        images.append({"id": len(images) + 1, "width": sample.width, "height": sample.height})
        for b in sample.boxes:
            w, h = b.x1 - b.x0, b.y1 - b.y0
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": len(images),
                    "iscrowd": 0,
                    "area": w * h,
                    "category_id": ids[b.label],
                    "bbox": [b.x0, b.y0, w, h],
                }
            )
    results = []
    failed = {f.data_row_id for f in _failures(run)}
    for p in read_predictions(run.paths.predictions):
        for d in p.detections:
            b = d.box
            results.append(
                {
                    "image_id": image_of[p.data_row_id],
                    "category_id": ids[b.label],
                    "bbox": [b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0],
                    "score": d.score,
                }
            )
    keep = {image_of[i] for i in image_of if i not in failed}
    gt = {
        "images": [im for im in images if im["id"] in keep],
        "annotations": [a for a in anns if a["image_id"] in keep],
        "categories": [{"id": k, "name": n} for n, k in ids.items()],
    }
    (run.paths.root / "coco_gt.json").write_bytes(orjson.dumps(gt))
    (run.paths.root / "coco_results.json").write_bytes(orjson.dumps(results))
    return {"in": len(images), "written": len(keep), "rejected": len(images) - len(keep)}


def _failures(run: _Run) -> Any:
    from vmt.pipeline.results import PredictResult

    return run.store.result(RUN_ID, PredictResult).failures


def stage_faster_coco_eval(args: argparse.Namespace, run: _Run) -> dict[str, int]:
    """The anchor of evaluation: faster-coco-eval loading the COCO files and evaluating."""
    from faster_coco_eval import COCO, COCOeval_faster

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(run.paths.root / "coco_gt.json"))
        dt = gt.loadRes(str(run.paths.root / "coco_results.json"))
        ev = COCOeval_faster(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    rows = len(gt.getImgIds())
    return {"in": rows, "written": rows, "rejected": 0, "map_x1000": round(ev.stats[0] * 1000)}


def stage_dashboard(args: argparse.Namespace, run: _Run) -> dict[str, Any]:
    """The run page's data and pages of its rejected rows (first, last, last of one reason)."""
    from vmt.service.dashboard.rejected_rows import rejected_rows_page
    from vmt.service.dashboard.run_pages import run_detail

    timings: dict[str, Any] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        value = fn()
        timings[name] = round((time.perf_counter() - start) * 1000, 1)
        return value

    detail = timed("run_page_ms", lambda: run_detail(run.store, RUN_ID))
    by_reason = run.store.stage(RUN_ID, run.stage.PREPARE).outputs["rejections_by_reason"]
    path = run.paths.rejections
    first = timed(
        "rejected_page_1_ms", lambda: rejected_rows_page(path, by_reason, reason=None, page=1)
    )
    last = timed(
        "rejected_last_page_ms",
        lambda: rejected_rows_page(path, by_reason, reason=None, page=first.pages),
    )
    reason = next(iter(first.reasons))
    timed(
        "rejected_last_page_of_a_reason_ms",
        lambda: rejected_rows_page(path, by_reason, reason=reason, page=10**9),
    )
    shown = sum(r.count for r in detail.rejections)
    assert shown == first.total, (shown, first.total)
    listed = (first.pages - 1) * 100 + len(last.rows)
    return {
        "in": first.total,
        "written": listed,
        "rejected": 0,
        "events": detail.events_total,
        "pages": first.pages,
        **timings,
    }


def stage_publish(args: argparse.Namespace, run: _Run) -> dict[str, int]:
    from vmt.backends.labelbox.sink import PUBLISH_SUMMARY_HANDLE, LabelboxSink
    from vmt.pipeline.stages import publish_stage

    run.finish(publish_stage(LabelboxSink(run.settings, MODEL_RUN), run.ctx, paths=run.paths))
    summary = json.loads(run.ctx.get_handle(PUBLISH_SUMMARY_HANDLE) or "{}")
    lines = _count_lines(run.paths.labelbox_predictions) + _count_lines(run.paths.row_metrics)
    sent = summary["labelbox_predictions_rows"] + summary.get("labelbox_metrics_rows", 0)
    failed = summary["labelbox_predictions_failed_rows"] + summary.get(
        "labelbox_metrics_failed_rows", 0
    )
    left_out = summary.get("labelbox_predictions_left_out", 0) + summary.get(
        "labelbox_metric_rows_left_out", 0
    )
    imports = summary["labelbox_predictions_imports"] + summary.get("labelbox_metrics_imports", 0)
    return {
        "in": lines,
        "written": sent - failed,
        "rejected": failed + left_out,
        "imports": imports,
    }


STAGES: dict[str, Callable[[argparse.Namespace, _Run], dict[str, Any]]] = {
    "export": stage_export,
    "parse": stage_parse,
    "prepare": stage_prepare,
    "predict": stage_predict,
    "evaluate": stage_evaluate,
    "coco-files": stage_coco_files,
    "faster-coco-eval": stage_faster_coco_eval,
    "dashboard": stage_dashboard,
    "publish": stage_publish,
}
PRELOAD = {
    "export": ("labelbox", "vmt.backends.labelbox.source", "vmt.pipeline.stages"),
    "prepare": ("vmt.pipeline.stages", "vmt.formats.labelbox_export", "vmt.formats.vertex"),
    "predict": ("vmt.pipeline.stages", "vmt.formats.labelbox_predictions"),
    "evaluate": (
        "vmt.pipeline.stages",
        "vmt.evaluation",
        "vmt.evaluation.outputs",
        "vmt.formats.evaluation_inputs",
    ),
    "faster-coco-eval": ("faster_coco_eval",),
    "dashboard": ("vmt.service.dashboard.run_pages", "vmt.service.dashboard.rejected_rows"),
    "publish": ("labelbox", "vmt.backends.labelbox.sink", "vmt.pipeline.stages"),
}
"""Imported before the clock starts: a stage is timed, not the interpreter's imports."""
STORE_STAGE = {
    "parse": "export",
    "coco-files": "evaluate",
    "faster-coco-eval": "evaluate",
    "dashboard": "publish",
}


def _rss_mb() -> float:
    with Path("/proc/self/statm").open() as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def serve(args: argparse.Namespace) -> None:
    """The fake Labelbox with the model run; prints its endpoint, answers ``stats`` lines on
    stdin (imports made, distinct names, rows accepted and failed) until stdin closes."""
    from tests.fakes.labelbox_server import FakeLabelbox

    fake = FakeLabelbox(
        Path(args.work) / "fake", import_polls=0, export_polls=0, keep_payloads=False
    )
    fake.start()
    start = time.perf_counter()
    fake.add_model_run(MODEL_RUN, rows=export_rows(args.rows), classes=CLASSES)
    print(
        json.dumps({"endpoint": fake.endpoint, "generate_s": time.perf_counter() - start}),
        flush=True,
    )
    for line in sys.stdin:
        if line.strip() == "stats":
            imports = list(fake.imports.values())
            failed = sum(1 for i in imports for s in i.statuses if s["status"] != "SUCCESS")
            print(
                json.dumps(
                    {
                        "imports": len(imports),
                        "names": len({i.name for i in imports}),
                        "accepted": sum(i.accepted for i in imports),
                        "failed": failed,
                        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                    }
                ),
                flush=True,
            )
    fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="one stage of bench/million_rows.py")
    parser.add_argument("stage", choices=[*STAGES, "serve"])
    parser.add_argument("--work", required=True)
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--endpoint")
    args = parser.parse_args()
    if args.stage == "serve":
        serve(args)
        return
    run = _Run(args, STORE_STAGE.get(args.stage, args.stage))
    if args.stage in ("export", "prepare", "predict", "evaluate", "publish"):
        run.start()
    for module in PRELOAD.get(args.stage, ()):
        importlib.import_module(module)
    base = _rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    counts = STAGES[args.stage](args, run)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = {k: v() if callable(v) else v for k, v in counts.items()}  # counted off the clock
    print(
        json.dumps(
            {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak, "base_rss_mb": base, **counts}
        )
    )


if __name__ == "__main__":
    main()
