"""Statistics of ``benchmarks/replay.py``: pure functions over arrays of per-seed results.

* :func:`quartiles`: median, quartiles and IQR of one strategy's values over seeds;
* :func:`mann_whitney_greater`: the one-sided Mann-Whitney U test that ``a`` is stochastically
  greater than ``b`` (``scipy.stats.mannwhitneyu``; ties, common when many seeds reach 1.0, use its
  normal approximation with the tie correction);
* :func:`attainment_surfaces`: empirical attainment surfaces (``moocore.eaf``) of one strategy's
  fronts over seeds, both objectives minimised: the ``p`` % surface bounds the region that at least
  ``p`` % of the seeds' fronts attain (weakly dominate).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def quartiles(x: Sequence[float]) -> dict[str, float]:
    """``median``, ``q25``, ``q75`` (numpy's linear interpolation) and ``iqr = q75 - q25``."""
    q25, med, q75 = np.percentile(np.asarray(x, float), [25, 50, 75])
    return {"median": float(med), "q25": float(q25), "q75": float(q75), "iqr": float(q75 - q25)}


def mann_whitney_greater(a: Sequence[float], b: Sequence[float]) -> float:
    """p-value of the one-sided Mann-Whitney U test, alternative: ``a`` tends to be greater than ``b``.

    1.0 when both samples are one and the same constant (nothing to tell apart).
    """
    from scipy.stats import mannwhitneyu

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"the Mann-Whitney test needs two non-empty samples, but got {len(a)} and {len(b)} values")
    if np.all(a == a[0]) and np.all(b == a[0]):
        return 1.0
    return float(mannwhitneyu(a, b, alternative="greater").pvalue)


def attainment_surfaces(fronts: Sequence[np.ndarray], reference: Sequence[float],
                        percentiles: Sequence[int] = (25, 50, 75)) -> dict[int, np.ndarray]:
    """The ``percentiles`` % attainment surfaces of ``fronts`` (one (n_i x 2) array per seed).

    Each surface is an (m x 2) array of its corner points sorted by the first objective; empty
    when fewer than that share of the seeds attain anything better than ``reference``. Points not
    strictly better than ``reference`` in both objectives are dropped first (outside the box the
    hypervolume measures), and every seed also holds ``reference`` itself, so a seed with an empty
    front still counts as a seed (it attains only the reference point).
    """
    import moocore

    ref = np.asarray(reference, float)
    pts, sets = [], []
    for i, f in enumerate(fronts):
        f = np.asarray(f, float).reshape(-1, 2)
        f = f[np.all(f < ref, axis=1)]
        pts.append(np.vstack([f, ref[None, :]]))
        sets.extend([i + 1] * (len(f) + 1))
    if not pts:
        return {int(p): np.empty((0, 2)) for p in percentiles}
    eaf = moocore.eaf(np.vstack(pts), np.asarray(sets), percentiles=list(percentiles))
    out = {}
    for p in percentiles:
        surf = eaf[np.isclose(eaf[:, 2], p), :2]
        surf = surf[np.all(surf < ref, axis=1)]
        out[int(p)] = surf[np.argsort(surf[:, 0], kind="stable")]
    return out


__all__ = ["attainment_surfaces", "mann_whitney_greater", "quartiles"]
