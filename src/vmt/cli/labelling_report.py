"""One-paragraph summaries of what ``prelabel`` and ``select`` did in a Labelbox project."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmt.cli.console import console, err_console

if TYPE_CHECKING:
    from vmt.backends.labelbox.batches import BatchSummary
    from vmt.backends.labelbox.prelabels import PrelabelSummary


def print_prelabel_summary(project_id: str, s: PrelabelSummary) -> None:
    console.print(
        f"project {project_id}: {s.rows} pre-labels on {s.data_rows} data rows in {s.chunks} "
        f"imports ({s.uploaded_chunks} new, {s.reused_chunks} already done); "
        f"{s.skipped_labelled} labelled and {s.skipped_prelabelled} already pre-labelled rows "
        f"left alone; {s.failed_rows} rows rejected by Labelbox",
        highlight=False,
    )
    if s.classes_left_out:
        classes = ", ".join(f"{name} ({n})" for name, n in sorted(s.classes_left_out.items()))
        err_console.print(
            "[yellow]note:[/] classes missing from the project's ontology were left out: "
            + classes,
            highlight=False,
        )
    if s.failed_rows:
        files = ", ".join(str(p) for p in s.failure_files if p.stat().st_size)
        err_console.print(f"[yellow]note:[/] rejected rows and why: {files}", highlight=False)


def print_batch_summary(project_id: str, s: BatchSummary) -> None:
    made = ", ".join(s.created) or "none"
    console.print(
        f"project {project_id}: {s.rows} rows sent to labelling; batches created: {made}"
        + (f"; already there: {', '.join(s.existing)}" if s.existing else ""),
        highlight=False,
    )
    if s.refused:
        examples = f" (e.g. {', '.join(s.refused_examples)})" if s.refused_examples else ""
        err_console.print(
            f"[yellow]{s.refused} rows refused by Labelbox[/] (already in the project, or not "
            f"found){examples}",
            highlight=False,
        )
