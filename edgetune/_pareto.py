"""Pareto math, at the bottom of the import chain: pure numpy over ``(n, m)`` arrays (``n`` points,
``m`` objectives, every objective minimised), in the spirit of ``optuna/study/_multi_objective.py``.

One definition of domination (:func:`_dominance`) gives both the front (:func:`pareto_mask`,
:func:`pareto_front`) and the ranking beyond it (:func:`non_dominated_sort`, front 0 being the
same front; :func:`crowding_distance`, :func:`rank_order`, what MO-ASHA promotes from), and the
hypervolume (:func:`hypervolume`, exact, moocore). The report renderers and the schedulers only
consume these (``edgetune.report`` and ``edgetune.schedulers`` re-export them).

* The front is feasibility-aware: an infeasible point (over a budget) or a non-finite one is
  never on the front and never adds volume, and it never knocks a feasible point off the front
  either (constrained domination ranks every feasible point above every infeasible one).
* The ranking treats non-finite rows (NaN or inf, e.g. a diverged training run) as worse than
  every finite row: they share the last rank and get zero crowding distance.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _as_points(points: ArrayLike, *, allow_1d: bool = True) -> np.ndarray:
    """``points`` as a float ``(n, m)`` array; a 1-D array is ``n`` points of one objective when
    ``allow_1d`` (the front functions), an error otherwise (the ranking functions)."""
    p = np.asarray(points, dtype=float)
    if p.ndim == 1 and allow_1d:
        p = p.reshape(-1, 1) if p.size else p.reshape(0, 1)
    if p.ndim != 2:
        raise ValueError(f"points must be a 2-D array (n points x m objectives), but got shape {p.shape}")
    return p


def _dominance(q: np.ndarray) -> np.ndarray:
    """``dom[i, j]``: ``q[i]`` dominates ``q[j]`` (no worse everywhere, strictly better somewhere)."""
    le = np.all(q[:, None, :] <= q[None, :, :], axis=2)
    lt = np.any(q[:, None, :] < q[None, :, :], axis=2)
    return le & lt

def _usable(p: np.ndarray, feasible: ArrayLike | None) -> np.ndarray:
    ok = np.all(np.isfinite(p), axis=1)
    if feasible is not None:
        f = np.asarray(feasible, dtype=bool).reshape(-1)
        if f.shape[0] != p.shape[0]:
            raise ValueError(f"feasible has {f.shape[0]} entries for {p.shape[0]} points")
        ok &= f
    return ok


def dominates(a: ArrayLike, b: ArrayLike) -> bool:
    """True when ``a`` is no worse than ``b`` in every objective and better in at least one."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(a <= b) and np.any(a < b))


def pareto_mask(points: ArrayLike, feasible: ArrayLike | None = None) -> np.ndarray:
    """Boolean mask of the non-dominated set among usable (feasible, finite) points.

    Identical points are all kept (neither dominates the other).
    """
    p = _as_points(points)
    mask = np.zeros(p.shape[0], dtype=bool)
    idx = np.flatnonzero(_usable(p, feasible))
    if idx.size:
        mask[idx] = ~_dominance(p[idx]).any(axis=0)  # dominated by no usable point
    return mask


def pareto_front(points: ArrayLike, feasible: ArrayLike | None = None) -> np.ndarray:
    """Indices of the front, sorted by the first objective then the second."""
    p = _as_points(points)
    idx = np.flatnonzero(pareto_mask(p, feasible))
    if idx.size == 0:
        return idx
    order = np.lexsort(tuple(p[idx, k] for k in reversed(range(p.shape[1]))))
    return idx[order]


def derive_reference_point(points: ArrayLike, feasible: ArrayLike | None = None, margin: float = 0.1) -> np.ndarray:
    """A reference point just worse than every usable point: nadir + ``margin`` x range.

    Where a column has no spread, ``margin`` x |value| (or ``margin``) is added instead, so every
    usable point strictly dominates the reference and adds volume.
    """
    p = _as_points(points)
    usable = _usable(p, feasible)
    if not usable.any():
        raise ValueError("no usable (feasible, finite) point to derive a reference point from")
    q = p[usable]
    hi, lo = q.max(axis=0), q.min(axis=0)
    span = hi - lo
    pad = np.where(span > 0, margin * span, np.where(hi != 0, margin * np.abs(hi), margin))
    return hi + pad


def hypervolume(points: ArrayLike, ref: ArrayLike, feasible: ArrayLike | None = None) -> float:
    """Volume dominated by the usable points and bounded by ``ref`` (moocore, exact)."""
    import moocore

    p = _as_points(points)
    r = np.asarray(ref, dtype=float).reshape(-1)
    if r.shape[0] != p.shape[1]:
        raise ValueError(f"reference point has {r.shape[0]} values for {p.shape[1]} objectives")
    usable = _usable(p, feasible)
    q = p[usable]
    q = q[np.all(q < r, axis=1)]  # points not strictly better than ref add nothing
    if q.shape[0] == 0:
        return 0.0
    return float(moocore.hypervolume(q, ref=r))


def hypervolume_history(points: ArrayLike, ref: ArrayLike, feasible: ArrayLike | None = None) -> np.ndarray:
    """Hypervolume of the first k points, for k = 1..n (points in trial order)."""
    p = _as_points(points)
    usable = _usable(p, feasible)
    out = np.zeros(p.shape[0])
    for k in range(p.shape[0]):
        out[k] = hypervolume(p[: k + 1], ref, usable[: k + 1]) if usable[: k + 1].any() else 0.0
    return out


def non_dominated_sort(points: ArrayLike) -> np.ndarray:
    """Front index of every point: 0 for the Pareto front, 1 for the front once 0 is removed, ...

    Deb's fast non-dominated sort, O(m n^2) time and O(n^2) memory (fine for the few
    thousand results a rung ever holds). Equal points share a front.
    """
    pts = _as_points(points, allow_1d=False)
    n = len(pts)
    ranks = np.full(n, -1, dtype=int)
    finite = np.all(np.isfinite(pts), axis=1)
    idx = np.flatnonzero(finite)
    if idx.size:
        dom = _dominance(pts[idx])
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


def crowding_distance(points: ArrayLike) -> np.ndarray:
    """NSGA-II crowding distance of each point within the set given (pass one front at a time).

    Per objective: the two extreme points get ``inf``; an inner point gets the gap between
    its two neighbours divided by the objective's range; the distance is the sum over
    objectives. An objective on which all points are equal adds nothing. Non-finite rows get 0.
    """
    pts = _as_points(points, allow_1d=False)
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


def rank_order(points: ArrayLike, ids: ArrayLike | None = None) -> np.ndarray:
    """Indices of ``points`` from best to worst: front index, then crowding distance (larger first,
    computed within each front), then ``ids`` (smaller first; default the row index).

    This total order is what MO-ASHA promotes from: the first ``k`` indices are the top ``k``.
    """
    pts = _as_points(points, allow_1d=False)
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


__all__ = [
    "crowding_distance",
    "derive_reference_point",
    "dominates",
    "hypervolume",
    "hypervolume_history",
    "non_dominated_sort",
    "pareto_front",
    "pareto_mask",
    "rank_order",
]
