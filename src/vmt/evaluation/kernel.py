"""The matching kernels, compiled with numba (``cache=True``: compiled once, then loaded from disk).

``match_per_class`` is pycocotools' ``computeIoU`` + ``evaluateImg`` for every (image, class)
group, every IoU threshold and every area range in one pass, without the 100-detection cap
(detections are matched greedily by score, so the first 100 match exactly as when capped; the
cap is applied later, when accumulating). ``match_per_image`` is class-agnostic matching for the
confusion matrix, plus the best same-class and other-class overlaps the error breakdown needs.

Both compute IoU exactly as pycocotools' ``bbIou`` (C) does, operation for operation, so the
numbers are bit-identical and threshold comparisons agree even on exact ties.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np

Array = Any  # numba-compiled functions take and return numpy arrays


@nb.njit(cache=True, nogil=True, inline="always")
def _iou(
    dx: float,
    dy: float,
    dw: float,
    dh: float,
    gx: float,
    gy: float,
    gw: float,
    gh: float,
    crowd: bool = False,
) -> float:
    # pycocotools maskApi.c bbIou, operation for operation; a crowd region's union is the
    # detection's own area (intersection over the detection).
    ga = gw * gh
    da = dw * dh
    w = min(dw + dx, gw + gx) - max(dx, gx)
    if w <= 0:
        return 0.0
    h = min(dh + dy, gh + gy) - max(dy, gy)
    if h <= 0:
        return 0.0
    i = w * h
    u = da if crowd else da + ga - i
    return i / u


@nb.njit(cache=True, nogil=True)
def match_per_class(
    gx: Array,
    gy: Array,
    gw: Array,
    gh: Array,
    garea: Array,
    gkey: Array,
    gcrowd: Array,
    dx: Array,
    dy: Array,
    dw: Array,
    dh: Array,
    darea: Array,
    dkey: Array,
    thresholds: Array,
    area_lo: Array,
    area_hi: Array,
    t_eval: int,
) -> tuple[Array, Array, Array]:
    """Greedy COCO matching of every (image, class) group.

    ``gkey``/``dkey`` (image * K + class) are sorted; inside a group, detections are sorted by
    score, descending (stable). ``gcrowd[g]`` marks crowd regions: always ignored, matched by
    intersection over the detection's area, and matchable by any number of detections (as in
    pycocotools). Returns ``matched[d, a, t]`` and ``ignored[d, a, t]`` (uint8)
    for area range ``a`` and IoU threshold ``t``, and for each ground-truth box the detection
    that matched it at ``t_eval`` over all areas (``-1`` if none).
    """
    n_areas = area_lo.shape[0]
    n_thr = thresholds.shape[0]
    n_det = dx.shape[0]
    n_gt = gx.shape[0]
    matched = np.zeros((n_det, n_areas, n_thr), dtype=np.uint8)
    ignored = np.zeros((n_det, n_areas, n_thr), dtype=np.uint8)
    gt_by = np.full(n_gt, -1, dtype=np.int64)
    big = np.iinfo(np.int64).max

    iou = np.empty(64, dtype=np.float64)
    order = np.empty(16, dtype=np.int64)
    g_ign = np.empty(16, dtype=np.uint8)
    g_used = np.empty(16, dtype=np.uint8)

    g0 = 0
    d0 = 0
    while g0 < n_gt or d0 < n_det:
        key = min(gkey[g0] if g0 < n_gt else big, dkey[d0] if d0 < n_det else big)
        g1 = g0
        while g1 < n_gt and gkey[g1] == key:
            g1 += 1
        d1 = d0
        while d1 < n_det and dkey[d1] == key:
            d1 += 1
        n_g = g1 - g0
        n_d = d1 - d0
        if n_g * n_d > iou.shape[0]:
            iou = np.empty(2 * n_g * n_d, dtype=np.float64)
        if n_g > order.shape[0]:
            order = np.empty(2 * n_g, dtype=np.int64)
            g_ign = np.empty(2 * n_g, dtype=np.uint8)
            g_used = np.empty(2 * n_g, dtype=np.uint8)
        for d in range(n_d):
            for g in range(n_g):
                iou[d * n_g + g] = _iou(
                    dx[d0 + d], dy[d0 + d], dw[d0 + d], dh[d0 + d],
                    gx[g0 + g], gy[g0 + g], gw[g0 + g], gh[g0 + g], gcrowd[g0 + g] == 1,
                )  # fmt: skip
        for a in range(n_areas):
            lo = area_lo[a]
            hi = area_hi[a]
            # ground truth outside the area range is ignored; ignored ones sort last (stable)
            n_order = 0
            for g in range(n_g):
                ar = garea[g0 + g]
                g_ign[g] = 1 if (gcrowd[g0 + g] == 1 or ar < lo or ar > hi) else 0
                if g_ign[g] == 0:
                    order[n_order] = g
                    n_order += 1
            for g in range(n_g):
                if g_ign[g] == 1:
                    order[n_order] = g
                    n_order += 1
            for t in range(n_thr):
                thr = min(thresholds[t], 1 - 1e-10)
                for g in range(n_g):
                    g_used[g] = 0
                for d in range(n_d):
                    best = -1
                    cur = thr
                    for j in range(n_g):
                        g = order[j]
                        if g_used[g] == 1 and gcrowd[g0 + g] == 0:
                            continue
                        if best > -1 and g_ign[best] == 0 and g_ign[g] == 1:
                            break
                        v = iou[d * n_g + g]
                        if v < cur:
                            continue
                        cur = v
                        best = g
                    if best > -1:
                        g_used[best] = 1
                        matched[d0 + d, a, t] = 1
                        ignored[d0 + d, a, t] = g_ign[best]
                        if a == 0 and t == t_eval and gcrowd[g0 + best] == 0:
                            gt_by[g0 + best] = d0 + d
                    else:
                        ar = darea[d0 + d]
                        ignored[d0 + d, a, t] = 1 if (ar < lo or ar > hi) else 0
        g0 = g1
        d0 = d1
    return matched, ignored, gt_by


@nb.njit(cache=True, nogil=True)
def accumulate_precision(
    order: Array,
    class_lo: Array,
    class_hi: Array,
    matched: Array,
    ignored: Array,
    rank: Array,
    max_dets: Array,
    gt_counts: Array,
    rec_thrs: Array,
) -> tuple[Array, Array]:
    """pycocotools ``accumulate``: precision ``[T, R, K, A]`` (last cap), recall ``[T, K, A, M]``.

    ``order[class_lo[k]:class_hi[k]]`` lists class ``k``'s detections by score (descending),
    image order, rank. Detections beyond a cap or ignored add neither a true nor a false
    positive; they repeat the previous point of the curve, which changes no interpolated value.
    """
    _, n_areas, n_thr = matched.shape
    n_classes = class_lo.shape[0]
    n_rec = rec_thrs.shape[0]
    n_max = max_dets.shape[0]
    last_cap = max_dets[n_max - 1]
    eps = np.spacing(1.0)
    precision = -np.ones((n_thr, n_rec, n_classes, n_areas))
    recall = -np.ones((n_thr, n_classes, n_areas, n_max))
    longest = 1
    for k in range(n_classes):
        longest = max(longest, class_hi[k] - class_lo[k])
    rc = np.empty(longest, dtype=np.float64)
    pr = np.empty(longest, dtype=np.float64)
    # one class's flags, gathered contiguously: 1 = true positive, 2 = false positive, 0 = neither
    flags = np.empty((longest, n_areas, n_thr), dtype=np.uint8)
    ranks = np.empty(longest, dtype=np.int64)
    small = np.zeros(n_max, dtype=np.float64)
    for k in range(n_classes):
        lo = class_lo[k]
        n = class_hi[k] - lo
        for i in range(n):
            d = order[lo + i]
            ranks[i] = rank[d]
            for a in range(n_areas):
                for t in range(n_thr):
                    if ignored[d, a, t] == 1:
                        flags[i, a, t] = 0
                    elif matched[d, a, t] == 1:
                        flags[i, a, t] = 1
                    else:
                        flags[i, a, t] = 2
        for a in range(n_areas):
            npig = gt_counts[k, a]
            if npig == 0:
                continue
            for t in range(n_thr):
                tp = 0.0
                fp = 0.0
                for m in range(n_max):
                    small[m] = 0.0
                for i in range(n):
                    f = flags[i, a, t]
                    if f == 0 or ranks[i] >= last_cap:
                        pass
                    elif f == 1:
                        tp += 1.0
                    else:
                        fp += 1.0
                    if f == 1:
                        for m in range(n_max - 1):
                            if ranks[i] < max_dets[m]:
                                small[m] += 1.0
                    rc[i] = tp / npig
                    pr[i] = tp / (fp + tp + eps)
                for m in range(n_max - 1):
                    # pycocotools summarises only recall for the smaller caps
                    recall[t, k, a, m] = small[m] / npig
                recall[t, k, a, n_max - 1] = rc[n - 1] if n > 0 else 0.0
                for i in range(n - 1, 0, -1):
                    if pr[i] > pr[i - 1]:
                        pr[i - 1] = pr[i]
                i = 0
                for r in range(n_rec):
                    while i < n and rc[i] < rec_thrs[r]:
                        i += 1
                    precision[t, r, k, a] = pr[i] if i < n else 0.0
    return precision, recall


@nb.njit(cache=True, nogil=True)
def match_per_image(
    gx: Array,
    gy: Array,
    gw: Array,
    gh: Array,
    glabel: Array,
    dx: Array,
    dy: Array,
    dw: Array,
    dh: Array,
    dlabel: Array,
    dscore: Array,
    g_lo: Array,
    g_hi: Array,
    d_order: Array,
    d_lo: Array,
    d_hi: Array,
    iou_threshold: float,
    confidence: float,
) -> tuple[Array, Array, Array, Array, Array]:
    """Class-agnostic greedy matching per image, and best overlaps by class agreement.

    ``d_order[d_lo[i]:d_hi[i]]`` lists image ``i``'s detections by score, descending. Only
    detections with ``score >= confidence`` take part in the matching: each takes the unmatched
    ground truth (any class) of highest IoU >= ``iou_threshold`` (ties: the first). Returns
    ``agnostic_gt[d]`` (matched ground truth or -1), and for every detection the highest IoU
    with a same-class / other-class ground truth and which one (``-1`` if none).
    """
    n_det = dx.shape[0]
    agnostic_gt = np.full(n_det, -1, dtype=np.int64)
    same_iou = np.zeros(n_det, dtype=np.float64)
    same_arg = np.full(n_det, -1, dtype=np.int64)
    other_iou = np.zeros(n_det, dtype=np.float64)
    other_arg = np.full(n_det, -1, dtype=np.int64)
    max_g = 1
    for i in range(g_lo.shape[0]):
        max_g = max(max_g, g_hi[i] - g_lo[i])
    g_used = np.empty(max_g, dtype=np.uint8)
    for i in range(g_lo.shape[0]):
        g0 = g_lo[i]
        n_g = g_hi[i] - g0
        for g in range(n_g):
            g_used[g] = 0
        for j in range(d_lo[i], d_hi[i]):
            d = d_order[j]
            best = -1
            best_iou = iou_threshold
            takes_part = dscore[d] >= confidence
            for g in range(n_g):
                v = _iou(dx[d], dy[d], dw[d], dh[d], gx[g0 + g], gy[g0 + g], gw[g0 + g], gh[g0 + g])
                if glabel[g0 + g] == dlabel[d]:
                    if v > same_iou[d]:
                        same_iou[d] = v
                        same_arg[d] = g0 + g
                elif v > other_iou[d]:
                    other_iou[d] = v
                    other_arg[d] = g0 + g
                if takes_part and g_used[g] == 0 and v >= best_iou and (best == -1 or v > best_iou):
                    best = g
                    best_iou = v
            if best > -1:
                g_used[best] = 1
                agnostic_gt[d] = g0 + best
    return agnostic_gt, same_iou, same_arg, other_iou, other_arg
