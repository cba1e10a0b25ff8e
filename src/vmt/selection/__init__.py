"""Choosing what to label next: rank a pool of predicted rows (pure numpy, no I/O).

``rank_pool(table, strategy=..., options=...)`` -> ``Ranking`` (rows with data row id, global key,
score, rank and a readable reason). Strategies: ``least_confidence``, ``margin``, ``entropy``,
``rare_class``, ``random`` and ``diverse`` (k-center greedy over image embeddings, on the top
candidates of an uncertainty strategy). Ties are broken by data row id, so the same inputs
always give the same ranking.
"""

from vmt.selection.ranking import (
    STRATEGIES,
    PoolEmbeddings,
    RankedRow,
    Ranking,
    SelectionOptions,
    rank_pool,
)

__all__ = ["STRATEGIES", "PoolEmbeddings", "RankedRow", "Ranking", "SelectionOptions", "rank_pool"]
