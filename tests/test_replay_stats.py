"""benchmarks/replay_stats.py on inputs whose answers are known by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from replay_stats import attainment_surfaces, mann_whitney_greater, quartiles  # noqa: E402

from edgetune._pareto import hypervolume  # noqa: E402


def test_quartiles_and_iqr() -> None:
    assert quartiles([1, 2, 3, 4]) == {"median": 2.5, "q25": 1.75, "q75": 3.25, "iqr": 1.5}
    assert quartiles([0.9] * 5)["iqr"] == 0.0


def test_mann_whitney_one_sided_p_values() -> None:
    # no ties, 3 vs 3, a entirely above b: U = 9, the exact one-sided p is 1 / C(6, 3) = 0.05
    assert mann_whitney_greater([4, 5, 6], [1, 2, 3]) == pytest.approx(0.05)
    assert mann_whitney_greater([1, 2, 3], [4, 5, 6]) == pytest.approx(1.0)
    # 20 seeds each, many ties at 1.0 as at a converged checkpoint: small when a is better, large when not
    a, b = [1.0] * 15 + [0.9] * 5, [1.0] * 5 + [0.8] * 15
    assert mann_whitney_greater(a, b) < 0.001 and mann_whitney_greater(b, a) > 0.99
    assert mann_whitney_greater([1.0] * 20, [1.0] * 20) == 1.0  # nothing to tell apart
    with pytest.raises(ValueError, match="non-empty"):
        mann_whitney_greater([], [1.0])


def test_attainment_surfaces_of_known_fronts() -> None:
    """Three seeds: A = {(1, 3), (2, 1)}, B = {(1.5, 2)}, C = {} (nothing better than the reference)."""
    ref = (4.0, 4.0)
    fronts = [np.array([[1, 3], [2, 1]]), np.array([[1.5, 2]]), np.empty((0, 2))]
    s = attainment_surfaces(fronts, ref, (25, 50, 75))
    assert s[25].tolist() == [[1, 3], [1.5, 2], [2, 1]]  # attained by >= 1 of 3 seeds: the union
    assert s[50].tolist() == [[1.5, 3], [2, 2]]  # by >= 2 of 3: A and B together
    assert s[75].shape == (0, 2)  # by all 3: C attains nothing
    # each surface's hypervolume: union >= median surface; the median surface's region is A's and B's overlap
    assert hypervolume(s[25], ref) == pytest.approx(hypervolume(np.vstack(fronts[:2]), ref))
    assert hypervolume(s[50], ref) == pytest.approx((4 - 1.5) * (4 - 3) + (4 - 2) * (3 - 2))
    # a point outside the reference box is not attainment
    assert attainment_surfaces([np.array([[5.0, 1.0]])], ref, (50,))[50].shape == (0, 2)
