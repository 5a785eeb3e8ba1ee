"""Pareto front and hypervolume: pure functions over arrays (every objective minimised).

Renderers (HTML, Markdown, CSV, PNG) only consume these. Feasibility-aware: an infeasible
point (over a budget) or a non-finite one is never on the front and never adds volume, and
it never knocks a feasible point off the front either (constrained domination ranks every
feasible point above every infeasible one).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _as_points(points: ArrayLike) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.ndim == 1:
        p = p.reshape(-1, 1) if p.size else p.reshape(0, 1)
    if p.ndim != 2:
        raise ValueError(f"points must be a 2-D array (n points x m objectives), got shape {p.shape}")
    return p


def _usable(p: np.ndarray, feasible: ArrayLike | None) -> np.ndarray:
    ok = np.all(np.isfinite(p), axis=1)
    if feasible is not None:
        f = np.asarray(feasible, dtype=bool).reshape(-1)
        if f.shape[0] != p.shape[0]:
            raise ValueError(f"feasible has {f.shape[0]} entries for {p.shape[0]} points")
        ok &= f
    return ok


def dominates(a: ArrayLike, b: ArrayLike) -> bool:
    """True when ``a`` is no worse than ``b`` everywhere and strictly better somewhere."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(a <= b) and np.any(a < b))


def pareto_mask(points: ArrayLike, feasible: ArrayLike | None = None) -> np.ndarray:
    """Boolean mask of the non-dominated set among usable (feasible, finite) points.

    Identical points are all kept (neither dominates the other).
    """
    p = _as_points(points)
    n = p.shape[0]
    usable = _usable(p, feasible)
    mask = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        return mask
    q = p[idx]
    # le[i, j]: q[j] <= q[i] everywhere; lt[i, j]: q[j] < q[i] somewhere
    le = np.all(q[None, :, :] <= q[:, None, :], axis=2)
    lt = np.any(q[None, :, :] < q[:, None, :], axis=2)
    dominated = np.any(le & lt, axis=1)
    mask[idx[~dominated]] = True
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


__all__ = [
    "derive_reference_point",
    "dominates",
    "hypervolume",
    "hypervolume_history",
    "pareto_front",
    "pareto_mask",
]
