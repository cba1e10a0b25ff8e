"""What Vertex AI AutoML training costs: one price, used by the dry run and the dashboard."""

from __future__ import annotations

USD_PER_NODE_HOUR = 3.465
"""AutoML image object detection training, USD per node hour (us-central1 list price)."""


def cost_usd(milli_node_hours: float) -> float:
    """USD for ``milli_node_hours`` (Vertex reports training cost in milli node hours)."""
    return milli_node_hours / 1000 * USD_PER_NODE_HOUR
