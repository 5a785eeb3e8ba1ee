"""Pareto ranking for minimised objective vectors: non-dominated sorting and crowding distance.

Pure numpy over an ``(n, m)`` array (``n`` points, ``m`` objectives, all minimised), in the
spirit of ``optuna/study/_multi_objective.py``; the scheduler and any renderer only consume
the returned arrays. Non-finite rows (NaN or inf, e.g. a diverged training run) are treated
as worse than every finite row: they share the last rank and get zero crowding distance.

Why here: Optuna's versions are private (``optuna.study._multi_objective``) and may move, and
``edgetune.report`` holds the front/hypervolume functions but no ranking beyond the front.
"""

from __future__ import annotations

import numpy as np


def _as_points(points: np.ndarray | list) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2:
        raise ValueError(f"points must be a 2-D array (n points x m objectives), but got shape {pts.shape}")
    return pts


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """True when ``a`` is no worse than ``b`` in every objective and better in at least one."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated_sort(points: np.ndarray | list) -> np.ndarray:
    """Front index of every point: 0 for the Pareto front, 1 for the front once 0 is removed, ...

    Deb's fast non-dominated sort, O(m n^2) time and O(n^2) memory (fine for the few
    thousand results a rung ever holds). Equal points share a front.
    """
    pts = _as_points(points)
    n = len(pts)
    ranks = np.full(n, -1, dtype=int)
    finite = np.all(np.isfinite(pts), axis=1)
    idx = np.flatnonzero(finite)
    if idx.size:
        p = pts[idx]
        le = np.all(p[:, None, :] <= p[None, :, :], axis=2)
        lt = np.any(p[:, None, :] < p[None, :, :], axis=2)
        dom = le & lt  # dom[i, j]: i dominates j
        n_dominators = dom.sum(axis=0)
        front = np.flatnonzero(n_dominators == 0)
        rank = 0
        while front.size:
            ranks[idx[front]] = rank
            n_dominators = n_dominators - dom[front].sum(axis=0)
            n_dominators[front] = -1  # already ranked
            front = np.flatnonzero(n_dominators == 0)
            rank += 1
    ranks[~finite] = ranks.max(initial=-1) + 1
    return ranks


def crowding_distance(points: np.ndarray | list) -> np.ndarray:
    """NSGA-II crowding distance of each point within the set given (pass one front at a time).

    Per objective: the two extreme points get ``inf``; an inner point gets the gap between
    its two neighbours divided by the objective's range; the distance is the sum over
    objectives. An objective on which all points are equal adds nothing. Non-finite rows get 0.
    """
    pts = _as_points(points)
    n, m = pts.shape
    dist = np.zeros(n)
    finite = np.all(np.isfinite(pts), axis=1)
    idx = np.flatnonzero(finite)
    if idx.size == 0:
        return dist
    p = pts[idx]
    d = np.zeros(idx.size)
    for k in range(m):
        order = np.argsort(p[:, k], kind="stable")
        col = p[order, k]
        span = col[-1] - col[0]
        if span <= 0:
            continue
        d[order[0]] = np.inf
        d[order[-1]] = np.inf
        if idx.size > 2:
            d[order[1:-1]] += (col[2:] - col[:-2]) / span
    dist[idx] = d
    return dist


def rank_order(points: np.ndarray | list, ids: np.ndarray | list | None = None) -> np.ndarray:
    """Indices of ``points`` from best to worst: front index, then crowding distance (larger first,
    computed within each front), then ``ids`` (smaller first; default the row index).

    This total order is what MO-ASHA promotes from: the first ``k`` indices are the top ``k``.
    """
    pts = _as_points(points)
    n = len(pts)
    ids_arr = np.arange(n) if ids is None else np.asarray(ids)
    if len(ids_arr) != n:
        raise ValueError(f"ids must have one entry per point ({n}), but got {len(ids_arr)}")
    ranks = non_dominated_sort(pts)
    crowd = np.zeros(n)
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        crowd[members] = crowding_distance(pts[members])
    # np.lexsort sorts by the last key first.
    return np.lexsort((ids_arr, -crowd, ranks))


__all__ = ["crowding_distance", "dominates", "non_dominated_sort", "rank_order"]
