"""``vmt evaluate``: ground truth + predictions -> metrics.json, summary table, HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from vmt.cli.ci_gate import (
    FAIL_UNDER_HELP,
    JSON_HELP,
    evaluation_summary,
    exit_on_verdict,
    gate,
    print_json,
    thresholds_option,
)

if TYPE_CHECKING:
    from vmt.evaluation.result import Evaluation


def _confidence(text: str) -> float | None:
    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter(f"expected 'auto' or a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise typer.BadParameter(f"must be in [0, 1], got {value}")
    return value


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_command(
        ground_truth: Path = typer.Option(
            ..., "--ground-truth", "--gt", help="Labelbox export NDJSON or COCO JSON."
        ),
        predictions: Path = typer.Option(
            ...,
            "--predictions",
            "--pred",
            help="Labelbox prediction NDJSON, Vertex batch output (file or folder), or COCO "
            "results.",
        ),
        output: Path = typer.Option(
            Path("metrics.json"),
            "--output",
            "-o",
            help="Where to write the metrics JSON (default: metrics.json in the current folder).",
            show_default=False,
            dir_okay=False,
        ),
        html: Path | None = typer.Option(None, "--html", help="Also write the HTML report."),
        row_metrics: Path | None = typer.Option(
            None, "--row-metrics", help="Also write Labelbox per-row metric rows (NDJSON)."
        ),
        iou: float = typer.Option(
            0.5, "--iou", help="IoU for the sweep, PR curves, confusion matrix, per-row counts."
        ),
        confidence: str = typer.Option(
            "auto", "--confidence", help="'auto' (best F1 over all classes) or a number."
        ),
        splits: str | None = typer.Option(
            None,
            "--splits",
            help="Comma-separated splits to evaluate, or 'all' (default: validation,test when "
            "the file has splits, every row otherwise).",
        ),
        images: Path | None = typer.Option(
            None, "--images", help="Folder with the images, for the report's worst rows."
        ),
        gt_format: str | None = typer.Option(
            None, "--gt-format", help="labelbox | coco (default: detected from the content)."
        ),
        pred_format: str | None = typer.Option(
            None,
            "--pred-format",
            help="labelbox | vertex | coco (default: detected from the content).",
        ),
        model_run: str | None = typer.Option(
            None, "--model-run", help="Which model run to read when export rows list several."
        ),
        fail_under: list[str] | None = typer.Option(None, "--fail-under", help=FAIL_UNDER_HELP),
        as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    ) -> None:
        """Detection metrics (COCO, identical to pycocotools) and error analysis."""

        from vmt.cli.console import console, err_console
        from vmt.evaluation import evaluate
        from vmt.evaluation.outputs import write_evaluation_outputs
        from vmt.evaluation.result import summarize_rejections
        from vmt.formats.evaluation_inputs import image_finder, read_evaluation_files

        if output.resolve() in (ground_truth.resolve(), predictions.resolve()):
            raise typer.BadParameter("would overwrite an input", param_hint="'-o' / '--output'")
        thresholds = thresholds_option(fail_under)
        chosen_confidence = _confidence(confidence)
        with err_console.status("reading ground truth and predictions"):
            files = read_evaluation_files(
                ground_truth,
                predictions,
                gt_format=gt_format,
                pred_format=pred_format,
                splits=splits,
                model_run_id=model_run,
            )
        with err_console.status("evaluating"):
            evaluation = evaluate(
                files.evaluated, files.predictions.table, iou=iou, confidence=chosen_confidence
            ).with_rejections(files.predictions.ignored, files.predictions.warnings)
            metrics = evaluation.to_json()
            metrics["inputs"] = {
                "ground_truth": {
                    "path": str(ground_truth),
                    "format": files.ground_truth.format,
                    "rows": len(files.ground_truth.samples),
                    "rows_rejected": len(files.ground_truth.rejections),
                    "rejections": summarize_rejections(files.ground_truth.rejections),
                    "box_warnings": files.ground_truth.box_warnings,
                    "warnings": summarize_rejections(files.ground_truth.warnings),
                    "splits": [s.value for s in files.splits] if files.splits else "all",
                },
                "predictions": {"path": str(predictions), "format": files.prediction_format},
            }
        with err_console.status("writing metrics" + (" and the report" if html else "")):
            written = write_evaluation_outputs(
                evaluation,
                metrics,
                metrics_out=output,
                report_out=html,
                row_metrics_out=row_metrics,
                image_path=image_finder(files.evaluated, images) if html else None,
            )
        verdict = gate(metrics, thresholds)
        if as_json:
            print_json(evaluation_summary(metrics, written, verdict))
        else:
            _print_summary(console, evaluation, metrics)
            console.print("wrote " + ", ".join(str(p) for p in written), highlight=False)
        exit_on_verdict(verdict)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _print_summary(console: Any, evaluation: Evaluation, metrics: dict[str, Any]) -> None:
    from rich.table import Table

    counts = metrics["counts"]
    head = Table(title="Detection metrics", show_header=True, header_style="bold")
    for name in ("mAP", "AP50", "AP75", "AP S/M/L", "AR@1", "AR@10", "AR@100"):
        head.add_column(name, justify="right")
    head.add_row(
        _fmt(metrics["map"]),
        _fmt(metrics["map_50"]),
        _fmt(metrics["map_75"]),
        "/".join(_fmt(metrics[k]) for k in ("map_small", "map_medium", "map_large")),
        _fmt(metrics["mar_1"]),
        _fmt(metrics["mar_10"]),
        _fmt(metrics["mar_100"]),
    )
    console.print(head)
    table = Table(
        title=f"Per class (P/R at confidence {evaluation.confidence:g}, IoU {evaluation.iou:g})",
        header_style="bold",
    )
    for name in ("class", "AP", "AP50", "AP75", "GT", "pred", "P", "R", "best F1", "@conf"):
        table.add_column(name, justify="left" if name == "class" else "right")
    per_class = metrics["per_class"]
    for name in list(per_class)[:40]:
        m = per_class[name]
        table.add_row(
            name,
            _fmt(m["ap"]),
            _fmt(m["ap_50"]),
            _fmt(m["ap_75"]),
            str(m["gt_count"]),
            str(m["pred_count"]),
            _fmt(m["precision"]),
            _fmt(m["recall"]),
            _fmt(m["best_f1"]),
            "–" if m["best_threshold"] is None else f"{m['best_threshold']:.2f}",
        )
    console.print(table)
    if len(per_class) > 40:
        console.print(f"... and {len(per_class) - 40} more classes in the metrics file")
    sweep = metrics["confidence_sweep"]["overall"]
    console.print(
        f"{counts['images']} images, {counts['ground_truth_boxes']} boxes, "
        f"{counts['predictions']} predictions evaluated; recommended confidence "
        f"{sweep['best_threshold']} (F1 {_fmt(sweep['best_f1'])}); "
        f"confidence used: {evaluation.confidence:g} ({evaluation.confidence_source})",
        highlight=False,
    )
    ignored = metrics["ignored_predictions"]
    if ignored["total"]:
        console.print(f"[yellow]{ignored['total']} predictions ignored:[/]")
        for reason, info in ignored["by_reason"].items():
            lines = ", ".join(map(str, info["lines"][:8]))
            where = f" (lines {lines}{', ...' if info['count'] > 8 else ''})" if lines else ""
            example = f": {info['examples'][0]}" if info["examples"] else ""
            console.print(f"  {reason}: {info['count']}{where}{example}", highlight=False)
    for reason, info in metrics["warnings"].items():
        console.print(f"[yellow]warning[/] {reason}: {info['count']}", highlight=False)
    gt = metrics["inputs"]["ground_truth"]
    if gt["rows_rejected"]:
        reasons = ", ".join(f"{k}: {v['count']}" for k, v in gt["rejections"].items())
        console.print(
            f"[yellow]warning[/] {gt['rows_rejected']} ground-truth rows left out ({reasons})",
            highlight=False,
        )
    for reason, info in gt.get("warnings", {}).items():
        example = info["examples"][0] if info["examples"] else ""
        console.print(f"[bold yellow]warning[/] {reason}: {example}", highlight=False)
    if gt.get("box_warnings"):
        codes = ", ".join(f"{k}: {v}" for k, v in gt["box_warnings"].items())
        console.print(
            f"[yellow]warning[/] ground-truth boxes dropped or clipped by the export reader "
            f"({codes})",
            highlight=False,
        )
