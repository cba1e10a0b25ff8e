"""``vmt convert``: a Labelbox export into a Vertex AI image bounding-box import file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from vmt.formats.conversion_stats import ConversionStats


class UnassignedPolicy(StrEnum):
    skip = "skip"
    training = "training"
    validation = "validation"
    test = "test"
    auto = "auto"


def register(app: typer.Typer) -> None:
    @app.command()
    def convert(
        export: Path = typer.Argument(
            ...,
            help="Labelbox export file: model-run or project export v2, or v1 rows; NDJSON or "
            "a JSON array, optionally .gz.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
        output: Path = typer.Option(
            ..., "-o", "--output", help="Vertex import file to write (JSONL).", dir_okay=False
        ),
        image_uri_prefix: str | None = typer.Option(
            None,
            "--image-uri-prefix",
            help="gs:// prefix where the images are staged: URI = PREFIX + data row id + ext. "
            "Without it, rows whose row_data is not a gs:// URI are rejected (not_in_gcs).",
        ),
        model_run_id: str | None = typer.Option(
            None, "--model-run-id", help="The run (or project) to read when a row has several."
        ),
        unassigned: UnassignedPolicy | None = typer.Option(
            None,
            "--unassigned",
            case_sensitive=False,
            help="Rows without a split: skip them, put them in a split, or auto "
            "(sha256 of the data row id: 80% training, 10% validation, 10% test). Default: "
            "skip when some row has a split (a model-run export), auto when none has (a "
            "project or dataset export; the summary says so).",
            show_default=False,
        ),
        report: Path | None = typer.Option(
            None,
            "--report",
            help="Write counts, rejections, warnings and examples as JSON.",
            dir_okay=False,
        ),
        strict: bool = typer.Option(
            False,
            "--strict",
            help="Fail (exit 1) when a class has < 10 training images or a Vertex limit is broken.",
        ),
    ) -> None:
        """Convert a Labelbox export into a Vertex AI import file, streaming (constant memory).

        Exit 0 when at least one row was written, 1 when none was (or, with --strict, when
        Vertex would refuse the dataset), 2 for usage errors.
        """
        if image_uri_prefix is not None and not image_uri_prefix.startswith("gs://"):
            raise typer.BadParameter(
                f"must start with gs:// (got {image_uri_prefix!r})", param_hint="--image-uri-prefix"
            )
        for path, hint in ((output, "'-o' / '--output'"), (report, "'--report'")):
            if path is not None and not path.parent.is_dir():
                raise typer.BadParameter(f"folder {path.parent} does not exist", param_hint=hint)
        if output.resolve() == export.resolve():
            raise typer.BadParameter("would overwrite the export", param_hint="'-o' / '--output'")
        _convert(
            export,
            output,
            image_uri_prefix=image_uri_prefix,
            model_run_id=model_run_id,
            unassigned=unassigned.value if unassigned is not None else None,
            report=report,
            strict=strict,
        )


def _convert(
    export: Path,
    output: Path,
    *,
    image_uri_prefix: str | None,
    model_run_id: str | None,
    unassigned: str | None,
    report: Path | None,
    strict: bool,
) -> None:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from vmt.cli.console import console, err_console
    from vmt.errors import InputError
    from vmt.formats.conversion_stats import ConversionStats
    from vmt.formats.labelbox_to_vertex import convert_file

    stats = ConversionStats()
    columns = (
        TextColumn("converting"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:>12,} rows"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("convert", total=export.stat().st_size, rows=0)
        outcome = convert_file(
            export,
            output,
            model_run_id=model_run_id,
            unassigned=unassigned,
            image_uri_prefix=image_uri_prefix,
            strict=strict,
            report=report,
            stats=stats,
            progress=lambda done: progress.update(task, completed=done, rows=stats.rows_read),
        )
    if outcome.note is not None:
        console.print(outcome.note, highlight=False, markup=False, soft_wrap=True)
    _print_summary(console, stats, outcome.problems)
    if outcome.failure is not None:
        raise InputError(outcome.failure)
    err_console.print(f"wrote {stats.rows_written:,} rows to {output}", highlight=False)


def _print_summary(console: Console, stats: ConversionStats, problems: list[str]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from vmt.domain import Split
    from vmt.reasons import BOX_WARNINGS, EXPORT_ROW_CHECKS

    counts = Table(title="vmt convert", show_header=False, title_justify="left")
    counts.add_column("what")
    counts.add_column("count", justify="right")
    counts.add_row("rows read", f"{stats.rows_read:,}")
    counts.add_row("rows written", f"{stats.rows_written:,}")
    counts.add_row("boxes written", f"{stats.boxes_written:,}")
    counts.add_row("rows rejected", f"{stats.rows_rejected:,}")
    for code in EXPORT_ROW_CHECKS:
        if stats.rejected.get(code):
            counts.add_row(f"  rejected: {code}", f"{stats.rejected[code]:,}", style="red")
    for code in BOX_WARNINGS:
        if stats.warnings.get(code):
            counts.add_row(f"  warning: {code}", f"{stats.warnings[code]:,}", style="yellow")
    console.print(counts)

    splits = (Split.TRAINING, Split.VALIDATION, Split.TEST)
    classes = Table(title="images / boxes per class and split", title_justify="left")
    classes.add_column("class")
    for split in splits:
        classes.add_column(split.value, justify="right")
    images = {split: stats.images_per_class(split) for split in splits}
    boxes = {split: stats.boxes_per_class(split) for split in splits}
    for name in stats.classes:
        classes.add_row(
            escape(name),
            *(f"{images[s].get(name, 0):,} / {boxes[s].get(name, 0):,}" for s in splits),
        )
    if stats.classes:
        console.print(classes)
    for problem in problems:
        console.print(f"[yellow]Vertex limit:[/] {escape(problem)}", highlight=False)
