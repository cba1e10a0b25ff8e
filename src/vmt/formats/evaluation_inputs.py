"""Read what ``vmt evaluate`` compares: ground truth and predictions, in any supported format.

Ground truth: a Labelbox export (any form ``vmt convert`` reads; rows without boxes or splits are
kept; a row with no label for the run or project is not ground truth: it is left out and
reported as ``unlabelled_row``, predictions on it as ``on_unlabelled_row``) or COCO JSON.
Predictions: Labelbox prediction NDJSON, Vertex batch-prediction JSONL (or its output folder) or
COCO results. Formats are detected from content unless named. Only rows of the chosen splits are
evaluated: by default validation and test when the file has splits at all, every row otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from vmt.detection_table import DetectionTableBuilder, KnownRows, PredictionsRead
from vmt.domain import Prediction, Rejection, Sample, Split
from vmt.errors import InputError
from vmt.formats import coco, detect_format, labelbox_predictions, vertex_predictions
from vmt.formats.coco import CocoId
from vmt.formats.conversion_stats import ConversionStats
from vmt.formats.export_options import ExportOptions
from vmt.formats.image_uri import gcs_uri
from vmt.formats.labelbox_export import read_samples
from vmt.formats.vertex_predictions import AmbiguousImage, SampleForUri
from vmt.gc_pause import gc_paused
from vmt.reasons import Reason

DEFAULT_SPLITS = (Split.VALIDATION, Split.TEST)
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


@dataclass(frozen=True)
class GroundTruth:
    samples: list[Sample]
    """Every row read, whatever its split."""
    rejections: list[Rejection]
    format: str
    categories: dict[CocoId, str] | None = None
    """COCO category ids -> names (COCO ground truth only)."""
    box_warnings: dict[str, int] = field(default_factory=dict)
    """Boxes the export reader dropped or clipped, by code (Labelbox ground truth only; every
    labelled box is kept: Vertex's size limits do not apply to ground truth)."""
    warnings: list[Rejection] = field(default_factory=list)
    """Boxes kept that pycocotools would score differently (COCO: ``annotation_id_zero``)."""
    unlabelled: list[Sample] = field(default_factory=list)
    """Export rows with no label (each also in ``rejections`` as ``unlabelled_row``): never
    evaluated, only known so that predictions on them are told apart."""


@dataclass(frozen=True)
class RunGroundTruth:
    """What a run evaluates (`evaluation_ground_truth`)."""

    rows: list[Sample]
    unlabelled: list[Rejection]
    """Rows of the chosen splits with no label (``unlabelled_row``): left out of the metrics."""

    def leave_out_unlabelled(
        self, predictions: Iterable[Prediction]
    ) -> tuple[list[Prediction], list[Rejection]]:
        """``predictions`` less those on unlabelled rows, and one ``on_unlabelled_row``
        rejection per detection left out."""
        unlabelled = {r.data_row_id for r in self.unlabelled}
        kept: list[Prediction] = []
        left_out: list[Rejection] = []
        for prediction in predictions:
            row = prediction.data_row_id
            if row not in unlabelled:
                kept.append(prediction)
                continue
            detail = f"data row {row} has no label: its predictions are not scored"
            left_out += [
                Rejection(Reason.ON_UNLABELLED_ROW, None, row, detail)
                for _ in prediction.detections
            ]
        return kept, left_out


@dataclass(frozen=True)
class EvaluationFiles:
    ground_truth: GroundTruth
    evaluated: list[Sample]
    """The rows of the chosen splits, in file order, less the rows whose prediction failed."""
    splits: tuple[Split, ...] | None
    """The chosen splits; None: every row."""
    predictions: PredictionsRead
    prediction_format: str


def parse_splits(text: str | None) -> tuple[Split, ...] | None:
    """``"validation,test"`` -> splits; ``"all"`` -> None (every row); None -> the default."""
    if text is None:
        return DEFAULT_SPLITS
    if text.strip().lower() == "all":
        return None
    out: list[Split] = []
    for part in text.split(","):
        split = Split.parse(part)
        if split is Split.UNASSIGNED and part.strip().lower() != "unassigned":
            raise InputError(
                f"unknown split {part.strip()!r} in --splits (use training, validation, test, "
                "unassigned or all)"
            )
        out.append(split)
    return tuple(dict.fromkeys(out))


def read_ground_truth(
    path: Path, *, fmt: str | None = None, model_run_id: str | None = None
) -> GroundTruth:
    fmt = fmt or detect_format.ground_truth_format(path)
    if fmt == "coco":
        doc = coco.read_ground_truth(path)
        return GroundTruth(
            doc.samples, doc.rejections, "coco", doc.categories, warnings=doc.warnings
        )
    if fmt != "labelbox":
        raise InputError(f"unknown ground-truth format {fmt!r} (labelbox or coco)")
    options = ExportOptions.ground_truth(model_run_id)
    samples: list[Sample] = []
    rejections: list[Rejection] = []
    stats = ConversionStats()
    try:
        for item in read_samples(path, options, stats):
            if isinstance(item, Sample):
                samples.append(item)
            else:
                rejections.append(item)
    except OSError as exc:
        raise InputError(f"cannot read ground truth {path}: {exc.strerror}") from exc
    return GroundTruth(
        samples,
        rejections,
        "labelbox",
        box_warnings=dict(stats.warnings),
        unlabelled=[row for r in rejections if (row := _unlabelled_row(r)) is not None],
    )


def _unlabelled_row(rejection: Rejection) -> Sample | None:
    """The row of an ``unlabelled_row`` rejection (`ExportOptions.require_label`), else None."""
    row = rejection.extra.get("row") if rejection.reason == Reason.UNLABELLED_ROW else None
    return row if isinstance(row, Sample) else None


def evaluation_ground_truth(
    export: Path, prepared: Iterable[Sample], splits: tuple[Split, ...]
) -> RunGroundTruth:
    """The rows a run evaluates, exactly as ``vmt evaluate`` reads them from the same export:
    every row of ``splits`` with every labelled box (`ExportOptions.ground_truth`: no Vertex
    size filter), in file order, and the rows of ``splits`` with no label (left out). A row the
    run prepared keeps its prepared image location (for the report's pictures). Raises
    ``InputError`` when the export cannot be read."""
    located = {s.data_row_id: s.image_uri for s in prepared}
    chosen = set(splits)
    rows: list[Sample] = []
    unlabelled: list[Rejection] = []
    for item in read_samples(export, ExportOptions.ground_truth()):
        if isinstance(item, Sample):
            if item.split in chosen:
                uri = located.get(item.data_row_id)
                rows.append(item if uri is None else replace(item, image_uri=uri))
        elif (row := _unlabelled_row(item)) is not None and row.split in chosen:
            unlabelled.append(item)
    return RunGroundTruth(rows, unlabelled)


def choose_rows(
    samples: Sequence[Sample], splits: tuple[Split, ...] | None, *, explicit: bool
) -> tuple[list[Sample], tuple[Split, ...] | None]:
    """The rows to evaluate. With the default splits and a file without any split, every row."""
    if splits is None:
        return list(samples), None
    if not explicit and all(s.split is Split.UNASSIGNED for s in samples):
        return list(samples), None
    chosen = set(splits)
    rows = [s for s in samples if s.split in chosen]
    if not rows:
        names = ",".join(s.value for s in splits)
        raise InputError(f"no ground-truth rows in splits {names}; choose others with --splits")
    return rows, splits


@gc_paused()
def read_evaluation_files(
    ground_truth: Path,
    predictions: Path,
    *,
    gt_format: str | None = None,
    pred_format: str | None = None,
    splits: str | None = None,
    model_run_id: str | None = None,
    keep_unlabelled: bool = False,
) -> EvaluationFiles:
    """Ground truth, the rows to evaluate and the predictions, with everything left out.
    ``keep_unlabelled``: detections on rows with no label stay in the predictions (never in
    the metrics), for whoever publishes them."""
    gt = read_ground_truth(ground_truth, fmt=gt_format, model_run_id=model_run_id)
    if not gt.samples:
        why = f" (all {len(gt.unlabelled)} rows have no label yet)" if gt.unlabelled else ""
        raise InputError(f"no usable rows in ground truth {ground_truth}{why}")
    evaluated, chosen = choose_rows(gt.samples, parse_splits(splits), explicit=splits is not None)
    classes = (
        set(gt.categories.values())
        if gt.categories is not None
        else {b.label for s in gt.samples for b in s.boxes}
    )
    known = KnownRows.from_samples(
        gt.samples,
        {s.data_row_id for s in evaluated},
        classes or None,
        unlabelled=gt.unlabelled,
        keep_unlabelled=keep_unlabelled,
    )
    fmt = pred_format or detect_format.prediction_format(predictions)
    read = read_prediction_rows(
        predictions,
        fmt=fmt,
        samples=[*gt.samples, *gt.unlabelled],
        known=known,
        categories=gt.categories,
    )
    if read.failed_rows:
        evaluated = [s for s in evaluated if s.data_row_id not in read.failed_rows]
    return EvaluationFiles(gt, evaluated, chosen, read, fmt)


def read_prediction_rows(
    predictions: Path,
    *,
    fmt: str,
    samples: Sequence[Sample],
    known: KnownRows,
    categories: Mapping[int | str, str] | None = None,
) -> PredictionsRead:
    """Predictions in ``fmt`` (``detect_format.prediction_format``'s answer: empty, labelbox,
    vertex, coco) matched to ``samples``: by data row id or global key, by image location
    (``sample_finder``), or by COCO image id with ``categories`` (COCO ground truth's; without
    them COCO results cannot be read). Raises ``InputError`` for another format."""
    if fmt == detect_format.EMPTY:
        return DetectionTableBuilder(known).result()
    if fmt == "labelbox":
        return labelbox_predictions.read_predictions(predictions, known)
    if fmt == "vertex":
        return vertex_predictions.read_predictions(
            detect_format.vertex_prediction_files(predictions),
            sample_for_uri=sample_finder(samples),
            known=known,
        )
    if fmt == "coco":
        if categories is None:
            raise InputError(
                "COCO results name classes by category id: they need COCO ground truth"
            )
        return coco.read_results(predictions, categories=categories, known=known)
    raise InputError(f"unknown prediction format {fmt!r} (labelbox, vertex or coco)")


def _file_name(uri: str) -> str:
    return PurePosixPath(unquote(urlparse(uri).path) if "://" in uri else uri).name


def sample_finder(samples: Sequence[Sample]) -> SampleForUri:
    """Image location -> row: the exact location first (a Cloud Storage object by its
    ``gs://`` URI, however either side names it: `vmt.formats.image_uri.gcs_uri`); else, for
    staged copies, the file name (of the location, the global key, or ``<data row id>.<ext>``)
    when exactly one row has it. A file name that several rows share matches none of them:
    `AmbiguousImage`, never a guess."""
    by_uri = {gcs_uri(s.image_uri) or s.image_uri: s for s in samples if s.image_uri}
    by_name: dict[str, Sample | AmbiguousImage] = {}
    by_id = {s.data_row_id: s for s in samples}
    for s in samples:
        for key in {_file_name(s.image_uri), s.global_key}:
            if not key:
                continue
            seen = by_name.get(key)
            if seen is None:
                by_name[key] = s
            elif isinstance(seen, AmbiguousImage):
                if s.data_row_id not in seen.data_row_ids:
                    by_name[key] = AmbiguousImage((*seen.data_row_ids, s.data_row_id))
            elif seen.data_row_id != s.data_row_id:
                by_name[key] = AmbiguousImage((seen.data_row_id, s.data_row_id))

    def find(uri: str) -> Sample | AmbiguousImage | None:
        hit = by_uri.get(gcs_uri(uri) or uri)
        if hit is not None:
            return hit
        name = _file_name(uri)
        stem = PurePosixPath(name).stem
        return by_id.get(stem) or by_id.get(name) or by_name.get(name) or by_name.get(stem)

    return find


def image_finder(
    samples: Sequence[Sample], images_dir: Path | None
) -> Callable[[str], Path | None]:
    """data row id -> a local image for the report: under ``images_dir`` by global key, file
    name of ``row_data`` or ``<data row id>.<ext>``; else ``row_data`` itself when local."""
    by_id = {s.data_row_id: s for s in samples}

    def find(data_row_id: str) -> Path | None:
        sample = by_id.get(data_row_id)
        if sample is None:
            return None
        if images_dir is not None:
            names = [n for n in (sample.global_key, _file_name(sample.image_uri)) if n]
            names += [data_row_id + suffix for suffix in _IMAGE_SUFFIXES]
            for name in names:
                candidate = images_dir / name
                if candidate.is_file():
                    return candidate
        uri = sample.image_uri
        if uri.startswith("file://"):
            local = Path(unquote(urlparse(uri).path))
        elif "://" in uri or not uri:
            return None
        else:
            local = Path(uri)
        return local if local.is_file() else None

    return find
