"""``--fail-under`` and ``--json`` of ``vmt run`` and ``vmt evaluate``: parse the thresholds
before any work starts, then print the summary and exit with ``GATE_FAILED_EXIT_CODE`` and a
one-line reason when the model falls short."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import typer

from vmt.cli.console import err_console
from vmt.errors import InputError
from vmt.quality_gate import (
    GATE_FAILED_EXIT_CODE,
    RUN_METRICS,
    Threshold,
    Verdict,
    check_thresholds,
    parse_thresholds,
)

FAIL_UNDER_HELP = (
    "Exit with status 3 when a metric of metrics.json is below VALUE: METRIC=VALUE, repeatable; "
    "METRIC is map, map_50, map_75, mar_100... or FIGURE:CLASS (e.g. ap_50:person=0.7)."
)
JSON_HELP = "Print a JSON summary on stdout (and logs as JSON lines on stderr)."


def thresholds_option(values: Sequence[str] | None) -> list[Threshold]:
    """The parsed ``--fail-under`` values; a bad one is a usage error (exit 2)."""
    try:
        return parse_thresholds(values or ())
    except InputError as exc:
        raise typer.BadParameter(exc.message, param_hint="--fail-under") from None


def gate(metrics: Mapping[str, Any], thresholds: Sequence[Threshold]) -> Verdict | None:
    return check_thresholds(metrics, thresholds) if thresholds else None


def print_json(summary: Mapping[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2, default=str).decode())
    sys.stdout.write("\n")
    sys.stdout.flush()


def exit_on_verdict(verdict: Verdict | None) -> None:
    """Say the verdict on stderr in one line; exit 3 when it failed."""
    if verdict is None:
        return
    if verdict.passed:
        err_console.print(f"[green]{verdict.reason()}[/]", highlight=False, soft_wrap=True)
        return
    err_console.print(f"[bold red]{verdict.reason()}[/]", highlight=False, soft_wrap=True)
    raise typer.Exit(GATE_FAILED_EXIT_CODE)


def evaluation_summary(
    metrics: Mapping[str, Any], written: Sequence[object], verdict: Verdict | None
) -> dict[str, Any]:
    """``vmt evaluate --json``: the twelve COCO figures, AP per class, files, the verdict."""
    per_class = metrics.get("per_class") or {}
    return {
        "metrics": {name: metrics.get(name) for name in RUN_METRICS},
        "per_class": {
            name: {k: figures.get(k) for k in ("ap", "ap_50", "ap_75", "gt_count")}
            for name, figures in per_class.items()
        },
        "counts": metrics.get("counts"),
        "written": [str(p) for p in written],
        "gate": verdict.to_json() if verdict else None,
    }
