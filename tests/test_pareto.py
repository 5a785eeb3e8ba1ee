"""Pareto front and hypervolume against brute-force computations on small 2-D and 3-D sets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgetune._pareto import (
    derive_reference_point,
    dominates,
    hypervolume,
    hypervolume_history,
    pareto_front,
    pareto_mask,
)


def brute_front(points: np.ndarray, feasible: np.ndarray) -> set[int]:
    ok = [i for i in range(len(points)) if feasible[i] and np.all(np.isfinite(points[i]))]
    out = set()
    for i in ok:
        if not any(
            all(points[j][k] <= points[i][k] for k in range(points.shape[1]))
            and any(points[j][k] < points[i][k] for k in range(points.shape[1]))
            for j in ok
        ):
            out.add(i)
    return out


def brute_hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """Sum the cells of the grid spanned by every coordinate that some point dominates."""
    pts = [p for p in points if np.all(p < ref)]
    if not pts:
        return 0.0
    axes = [sorted({p[k] for p in pts} | {ref[k]}) for k in range(len(ref))]
    total = 0.0
    for cell in itertools.product(*[range(len(a) - 1) for a in axes]):
        lo = [axes[k][c] for k, c in enumerate(cell)]
        hi = [axes[k][c + 1] for k, c in enumerate(cell)]
        if any(all(p[k] <= lo[k] for k in range(len(ref))) for p in pts):
            total += float(np.prod(np.subtract(hi, lo)))
    return total


def _sets(dim: int, n_sets: int = 40):
    rng = np.random.default_rng(dim)
    for _ in range(n_sets):
        n = int(rng.integers(1, 12))
        # small integer grid: many ties and duplicates
        pts = rng.integers(0, 6, size=(n, dim)).astype(float)
        feasible = rng.random(n) > 0.25
        yield pts, feasible


@pytest.mark.parametrize("dim", [2, 3])
def test_front_is_non_dominated_and_complete(dim: int) -> None:
    for pts, feasible in _sets(dim):
        mask = pareto_mask(pts, feasible)
        assert set(np.flatnonzero(mask)) == brute_front(pts, feasible)
        front = np.flatnonzero(mask)
        for i in front:  # non-dominated by any feasible point, and feasible itself
            assert feasible[i]
            assert not any(dominates(pts[j], pts[i]) for j in range(len(pts)) if feasible[j])
        for i in set(range(len(pts))) - set(front):  # complete: everything left out is dominated or infeasible
            assert not feasible[i] or any(dominates(pts[j], pts[i]) for j in front)


def test_infeasible_and_nan_never_on_front_and_never_block() -> None:
    pts = np.array([[1.0, 1.0], [2.0, 2.0], [np.nan, 0.0], [0.5, 3.0]])
    feasible = np.array([False, True, True, True])
    # point 0 dominates point 1 but is infeasible: 1 stays on the front; NaN row never is
    assert set(np.flatnonzero(pareto_mask(pts, feasible))) == {1, 3}
    assert pareto_mask(pts).tolist() == [True, False, False, True]


def test_front_sorted_by_first_objective() -> None:
    pts = np.array([[3.0, 1.0], [1.0, 3.0], [2.0, 2.0], [3.0, 3.0]])
    assert pareto_front(pts).tolist() == [1, 2, 0]


def test_duplicates_are_both_kept() -> None:
    pts = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 3.0]])
    assert pareto_mask(pts).tolist() == [True, True, False]


def test_empty_and_all_infeasible() -> None:
    assert pareto_mask(np.zeros((0, 2))).tolist() == []
    assert pareto_mask([[1.0, 2.0]], [False]).tolist() == [False]
    assert hypervolume([[1.0, 2.0]], [3.0, 3.0], [False]) == 0.0


@pytest.mark.parametrize("dim", [2, 3])
def test_hypervolume_equals_brute_force(dim: int) -> None:
    rng = np.random.default_rng(10 + dim)
    for pts, feasible in _sets(dim):
        pts = pts + rng.random(pts.shape) * 0.5  # break ties too, sometimes
        ref = np.full(dim, 6.0)
        ref[0] = 4.5  # some points lie beyond the reference on one axis: they add nothing
        expected = brute_hypervolume(pts[feasible], ref)
        assert hypervolume(pts, ref, feasible) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_hypervolume_known_values() -> None:
    assert hypervolume([[1.0, 1.0]], [3.0, 2.0]) == pytest.approx(2.0)
    assert hypervolume([[1.0, 2.0], [2.0, 1.0]], [3.0, 3.0]) == pytest.approx(3.0)
    assert hypervolume([[1.0, 1.0, 1.0]], [2.0, 3.0, 4.0]) == pytest.approx(6.0)


def test_history_is_monotone_and_ends_at_total() -> None:
    rng = np.random.default_rng(0)
    pts = rng.random((25, 3))
    feasible = rng.random(25) > 0.3
    ref = np.ones(3) * 1.1
    hist = hypervolume_history(pts, ref, feasible)
    assert np.all(np.diff(hist) >= -1e-12)
    assert hist[-1] == pytest.approx(hypervolume(pts, ref, feasible))
    for k in (0, 5, 17):
        assert hist[k] == pytest.approx(brute_hypervolume(pts[: k + 1][feasible[: k + 1]], ref))


def test_derived_reference_point_is_dominated_by_every_usable_point() -> None:
    pts = np.array([[0.2, 10.0, 5e6], [0.3, 5.0, 5e6], [9.0, 99.0, 9e9]])
    feasible = np.array([True, True, False])
    ref = derive_reference_point(pts, feasible)
    assert np.all(pts[feasible] < ref)
    assert ref[2] > 5e6 and ref[0] < 9.0  # infeasible point ignored; a flat column still padded
    assert hypervolume(pts, ref, feasible) > 0
    with pytest.raises(ValueError):
        derive_reference_point(pts, [False, False, False])


@pytest.mark.parametrize("dim", [2, 3])
def test_one_front_for_the_report_and_the_scheduler(dim: int) -> None:
    """The report's front and the scheduler's front 0 come from one definition of domination."""
    from edgetune.schedulers import non_dominated_sort

    rng = np.random.default_rng(dim)
    for _ in range(20):
        pts = rng.integers(0, 5, size=(int(rng.integers(1, 30)), dim)).astype(float)
        assert pareto_mask(pts).tolist() == (non_dominated_sort(pts) == 0).tolist()
