"""Detection metrics (COCO semantics, identical to pycocotools) and the HTML report.

Public entry points: ``evaluate`` -> ``Evaluation`` (``to_json()`` is ``metrics.json``),
``write_report_html``, ``row_metric_rows`` (Labelbox per-row metrics). numba is imported only
when ``evaluate`` runs.
"""

from vmt.evaluation.evaluator import evaluate
from vmt.evaluation.labelbox_metrics import row_metric_rows
from vmt.evaluation.report_html import write_report_html
from vmt.evaluation.result import Evaluation

__all__ = ["Evaluation", "evaluate", "row_metric_rows", "write_report_html"]
