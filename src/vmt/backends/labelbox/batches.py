"""Sending chosen rows to labelling: project batches, idempotent by name.

``project.create_batch(name, data_rows=ids, priority=p)`` takes at most 100,000 rows (1,000 or
more go through an async task the SDK waits on). A larger set becomes several batches named
``<name>-001``, ``<name>-002``... in ranking order. Before creating, the project's batch names
are listed: a batch whose name exists (made by an earlier, maybe killed, attempt) is not made
again. Rows Labelbox refuses (a data row already in the project, one it cannot find) are listed
by the synchronous call (``Batch.failed_data_row_ids``) and missing from the batch's ``size``
after the async one: both are counted and reported, never dropped silently.
``create_batches`` is not used: it names batches with its own suffixes and places rows
in them in an undefined order, which a retry could not recognise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from vmt.backends.labelbox.project import LabelboxProject
from vmt.errors import InputError

MAX_BATCH_ROWS = 100_000


@dataclass
class BatchSummary:
    rows: int = 0
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    """Batches already in the project (an earlier attempt): not made again."""
    refused: int = 0
    """Rows Labelbox did not put in the batch it created (e.g. already in the project)."""
    refused_examples: list[str] = field(default_factory=list)
    """The first few refused data row ids (when Labelbox names them)."""


def batch_parts(name: str, rows: int, *, size: int = MAX_BATCH_ROWS) -> list[tuple[str, int, int]]:
    """``(batch name, start, end)`` for ``rows`` rows: one batch named ``name`` when they fit,
    else ``name-001``, ``name-002``... of at most ``size`` rows each."""
    if rows <= size:
        return [(name, 0, rows)] if rows else []
    return [
        (f"{name}-{i + 1:03d}", start, min(start + size, rows))
        for i, start in enumerate(range(0, rows, size))
    ]


def send_batches(
    project: LabelboxProject,
    *,
    name: str,
    data_row_ids: Sequence[str],
    priority: int = 5,
    size: int = MAX_BATCH_ROWS,
    on_event: Callable[[str, dict[str, object]], None] | None = None,
) -> BatchSummary:
    """Put ``data_row_ids`` (in order) into batch(es) named from ``name``; see the module doc.
    Raises ``InputError`` for a priority outside 1-5 or an empty name."""
    if not 1 <= priority <= 5:
        raise InputError(f"--priority must be 1 (highest) to 5, got {priority}")
    if not name.strip():
        raise InputError("a batch name is required (--batch NAME)")
    summary = BatchSummary(rows=len(data_row_ids))
    parts = batch_parts(name, len(data_row_ids), size=size)
    if not parts:
        return summary
    existing = project.batch_names()
    sdk_project = project.project()
    for part_name, start, end in parts:
        if part_name in existing:
            summary.existing.append(part_name)
            if on_event:
                on_event("labelbox batch already exists: not made again", {"batch": part_name})
            continue
        ids = list(data_row_ids[start:end])
        batch = project.call(
            partial(sdk_project.create_batch, part_name, data_rows=ids, priority=priority),
            f"batch {part_name} creation",
        )
        summary.created.append(part_name)
        refused, examples = _refused(batch, len(ids))
        if on_event:
            on_event("labelbox batch created", {"batch": part_name, "rows": len(ids) - refused})
        if refused:
            summary.refused += refused
            summary.refused_examples.extend(examples[: 5 - len(summary.refused_examples)])
            if on_event:
                on_event(
                    "labelbox refused rows of a batch (already in the project, or not found)",
                    {"batch": part_name, "rows": refused, "examples": examples[:5]},
                )
    return summary


def _refused(batch: Any, sent: int) -> tuple[int, list[str]]:
    """Rows of ``sent`` that the created ``batch`` does not hold, and their ids when known."""
    failed = [str(i) for i in (getattr(batch, "failed_data_row_ids", None) or ())]
    if failed:
        return len(failed), failed
    size = getattr(batch, "size", None)
    return (max(sent - size, 0), []) if isinstance(size, int) else (0, [])
