"""k-center greedy (Sener & Savarese, *Active Learning for Convolutional Neural Networks: A
Core-Set Approach*, ICLR 2018): repeatedly pick the point farthest from everything chosen so far.

Distances are Euclidean between L2-normalised embeddings (so they lie in [0, 2]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_CHUNK = 4096


@dataclass(frozen=True)
class KCenterPicks:
    order: IntArray
    """Indices into the candidates, in pick order."""
    distance: FloatArray
    """Distance of each pick to the nearest earlier pick or labelled point when it was picked
    (``inf`` for a first pick with nothing labelled)."""


def normalise_rows(x: FloatArray) -> FloatArray:
    """Each row scaled to unit L2 norm (all-zero rows stay zero). ``(n, d) -> (n, d)``."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: FloatArray = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return out


def _nearest_distance(points: FloatArray, centers: FloatArray) -> FloatArray:
    """For each point, the distance to its nearest center, in chunks of centers."""
    best = np.full(points.shape[0], np.inf)
    p2 = np.einsum("ij,ij->i", points, points)
    for start in range(0, centers.shape[0], _CHUNK):
        c = centers[start : start + _CHUNK]
        c2 = np.einsum("ij,ij->i", c, c)
        d2 = p2[:, None] + c2[None, :] - 2.0 * points @ c.T
        best = np.minimum(best, np.sqrt(np.maximum(d2.min(axis=1), 0.0)))
    return best


def k_center_greedy(
    candidates: FloatArray, k: int, *, labelled: FloatArray | None = None
) -> KCenterPicks:
    """Pick ``min(k, n)`` of the ``(n, d)`` candidates, each the farthest from the labelled
    ``(m, d)`` points and the earlier picks. Ties (e.g. the first pick with nothing labelled,
    or duplicates) go to the lowest candidate index: pass the candidates in priority order.

    Raises ``ValueError`` when the dimensions disagree.
    """
    if candidates.ndim != 2:
        raise ValueError(f"candidates must be (n, d), got {candidates.shape}")
    if labelled is not None and labelled.shape[1:] != candidates.shape[1:]:
        raise ValueError(f"labelled embeddings are {labelled.shape}, candidates {candidates.shape}")
    points = normalise_rows(candidates.astype(np.float64))
    n = points.shape[0]
    k = min(k, n)
    nearest = (
        _nearest_distance(points, normalise_rows(labelled.astype(np.float64)))
        if labelled is not None and labelled.shape[0]
        else np.full(n, np.inf)
    )
    order = np.empty(k, dtype=np.int64)
    distance = np.empty(k, dtype=np.float64)
    available = np.ones(n, dtype=bool)
    for j in range(k):
        masked = np.where(available, nearest, -1.0)
        i = int(np.argmax(masked))
        order[j], distance[j] = i, nearest[i]
        available[i] = False
        nearest = np.minimum(nearest, np.linalg.norm(points - points[i], axis=1))
    return KCenterPicks(order, distance)
