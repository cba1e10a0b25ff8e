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
        unassigned: UnassignedPolicy = typer.Option(
            UnassignedPolicy.skip,
            "--unassigned",
            case_sensitive=False,
            help="Rows without a split: skip them, put them in a split, or auto "
            "(sha256 of the data row id: 80% training, 10% validation, 10% test).",
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
            unassigned=unassigned.value,
            report=report,
            strict=strict,
        )


def _convert(
    export: Path,
    output: Path,
    *,
    image_uri_prefix: str | None,
    model_run_id: str | None,
    unassigned: str,
    report: Path | None,
    strict: bool,
) -> None:
    import orjson
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from vmt.cli.console import console, err_console
    from vmt.errors import InputError
    from vmt.formats.conversion_stats import ConversionStats
    from vmt.formats.json_records import read_records
    from vmt.formats.labelbox_to_vertex import convert_export
    from vmt.formats.vertex import limit_problems

    size = export.stat().st_size

    stats = ConversionStats()
    partial = output.with_name(output.name + ".partial")
    columns = (
        TextColumn("converting"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:>12,} rows"),
        TimeRemainingColumn(),
    )
    try:
        with (
            Progress(*columns, console=err_console, transient=True) as progress,
            partial.open("wb", buffering=1 << 20) as sink,
        ):
            task = progress.add_task("convert", total=size, rows=0)

            def advance(position: int) -> None:
                progress.update(task, completed=position, rows=stats.rows_read)

            convert_export(
                read_records(export, advance),
                sink,
                model_run_id=model_run_id,
                unassigned=unassigned,
                image_uri_prefix=image_uri_prefix,
                stats=stats,
            )
        if report is not None:
            report.write_bytes(orjson.dumps(stats.to_json(), option=orjson.OPT_INDENT_2))
        problems = limit_problems(
            stats.classes, images=stats.rows_written, boxes=stats.boxes_written
        )
        _print_summary(console, stats, problems)
        if stats.rows_written == 0:
            raise InputError(f"no rows written: {_why_nothing(stats)}")
        if strict and problems:
            raise InputError(f"--strict: {'; '.join(problems)}")
        partial.replace(output)
    except OSError as exc:
        raise InputError(f"{exc.filename or export}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    err_console.print(f"wrote {stats.rows_written:,} rows to {output}", highlight=False)


def _why_nothing(stats: ConversionStats) -> str:
    """The real blocker: no rows, no row with a box (no option can help), else the most
    frequent rejection with the option that lifts it."""
    if stats.rows_read == 0:
        return "the export has no rows"
    unreadable = stats.rejected.get("malformed_json", 0) + stats.rejected.get("unrecognized_row", 0)
    if stats.rows_with_boxes == 0 and unreadable < stats.rows_read:
        return (
            f"no row has a bounding box: the {stats.rows_read - unreadable:,} rows read hold "
            "no ImageBoundingBox object (only classifications, other shapes or nothing); "
            "Vertex object detection trains on boxes"
        )
    reason, count = max(stats.rejected.items(), key=lambda item: item[1])
    hint = {
        "not_in_gcs": " (pass --image-uri-prefix gs://...)",
        "unassigned_split": " (pass --unassigned auto or a split)",
        "ambiguous_run": " (pass --model-run-id)",
    }.get(reason, "")
    return f"all {stats.rows_read:,} rows rejected, most as {reason} ({count:,}){hint}"


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
