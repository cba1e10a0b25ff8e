"""TEMPORARY: ``python -m vmt`` with the evaluate branch's stand-ins (the same ones the pipeline
tests use) installed when that branch has not landed yet; delete once it has."""

from __future__ import annotations

import importlib.util
import sys
import types

import vmt.evaluation
from tests.integration.pipeline.conftest import (
    _evaluate,
    _prediction_rows,
    _row_metric_rows,
    _write_report_html,
)


def _install() -> None:
    if importlib.util.find_spec("vmt.formats.labelbox_predictions") is None:
        module = types.ModuleType("vmt.formats.labelbox_predictions")
        module.prediction_rows = _prediction_rows  # type: ignore[attr-defined]
        sys.modules["vmt.formats.labelbox_predictions"] = module
    if not hasattr(vmt.evaluation, "evaluate"):
        vmt.evaluation.evaluate = _evaluate  # type: ignore[attr-defined]
        vmt.evaluation.write_report_html = _write_report_html  # type: ignore[attr-defined]
        vmt.evaluation.row_metric_rows = _row_metric_rows  # type: ignore[attr-defined]


if __name__ == "__main__":
    _install()
    from vmt.cli import main

    main()
