"""Run-level latency gates: stability scores, stored-baseline tests and history change points.

Pure functions over arrays (numpy, scipy.stats). The unit here is a **run** (one bench round:
a fresh runner process and session), not a chunk step: between-run noise (a busy neighbour,
another clock step, a new memory layout) is what makes a stored baseline unreliable, and only
several runs of one model (an A/A noise model) measure it.

* :func:`round_values`: one value per run, the run's p50 (or p90/p99), divided by the host-speed
  reference's p50 of the same run when the result was benched with ``--reference``.
* :func:`reference_slope` / :func:`adjust_runs`: how much of the reference's change between runs
  the model follows. Dividing by the reference assumes all of it (slope 1); on the shared 2-core VM
  the model follows ~0.8 of it, so a plain ratio over-corrects and a busy stretch reads as a slower
  model. The slope is fitted on the noise model's own runs (the stored baseline, or the history):
  a robust Theil-Sen line through log(run value) against log(reference p50), each result file
  centred on its own medians; then ``log v - slope * (log ref - centre)`` is each run's value at
  the baseline's host speed (regression adjustment, the CUPED idea; slope 0 is the raw value,
  slope 1 the ratio).
* :func:`stability`: ExecuTorch's stability score over the runs: CV (0 points at >= 10%),
  max/min (0 at >= 3) and p99/p50 of the steps (0 at >= 2), weighted 0.5/0.25/0.25, 0-100.
* :func:`compare_runs` (stored baseline): ratio of the candidate's median run to the baseline's
  (reference-adjusted when both carry reference p50s),
  a seeded bootstrap CI over runs, and a minimum effect. ``detectable_pct`` is the smallest
  slowdown the run counts and their spread can detect (one-sided ``confidence``, 95% power);
  above ``detect_pct`` the host is **too noisy to gate** and the verdict says so.
* :func:`change_points` / :func:`compare_to_history` (history mode): binary segmentation of a
  series of main-branch results with Welch's t-test (Apache Otava's E-Divisive + t-test idea),
  then the newest result tested against the segment after the last change point (a pooled
  t-test of one point against the regime, i.e. a one-sided prediction interval).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

QUANTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0}
VERDICTS = ("regression", "improvement", "unchanged", "noisy")
_POWER_Z = 1.6448536269514722  # 95% power


def round_values(samples, rounds: int, stat: str = "p50", reference=None) -> np.ndarray:
    """One value per run: ``stat`` of each round's samples, over the reference's round p50 if given."""
    if stat not in QUANTILES:
        raise ValueError(f"stat must be one of {', '.join(QUANTILES)}, but got {stat!r}")
    s = np.asarray(samples, dtype=np.float64)
    if rounds < 1 or s.size < rounds or s.size % rounds:
        raise ValueError(f"{s.size} samples do not split into {rounds} equal rounds")
    values = np.percentile(s.reshape(rounds, -1), QUANTILES[stat], axis=1)
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float64)
        if ref.size % rounds:
            raise ValueError(f"{ref.size} reference samples do not split into {rounds} equal rounds")
        values = values / np.median(ref.reshape(rounds, -1), axis=1)
    return values


SLOPE_RANGE = (0.0, 2.0)  # a sanity bound on the fitted reference slope, not a tuned value


def reference_slope(values, reference, groups=None) -> float:
    """Theil-Sen slope of log ``values`` (one per run) on log ``reference`` (the runs' reference p50).

    ``groups`` (one label per run, e.g. the result file) centres each group on its own medians
    first, so a level shift between files (another model version, another day) is not read as
    host-speed dependence. Clipped to :data:`SLOPE_RANGE`; 1.0 when fewer than 3 runs, or no two
    runs with different reference speeds, leave a slope to fit (the plain ratio).
    """
    y, x = np.log(np.asarray(values, dtype=np.float64)), np.log(np.asarray(reference, dtype=np.float64))
    if y.shape != x.shape or y.ndim != 1:
        raise ValueError(f"need one reference value per run, got shapes {y.shape} and {x.shape}")
    g = np.zeros(y.size, dtype=int) if groups is None else np.asarray(groups)
    for label in np.unique(g):
        sel = g == label
        y[sel] -= np.median(y[sel])
        x[sel] -= np.median(x[sel])
    i, j = np.triu_indices(y.size, 1)
    dx, dy = x[j] - x[i], y[j] - y[i]
    keep = np.abs(dx) > 1e-12
    if y.size < 3 or not keep.any():
        return 1.0
    return float(np.clip(np.median(dy[keep] / dx[keep]), *SLOPE_RANGE))


def adjust_runs(values, reference, slope: float, center: float) -> np.ndarray:
    """Each run's value at the host speed ``exp(center)`` of the reference: ``v * (exp(center) / ref) ** slope``."""
    v, r = np.asarray(values, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    return np.exp(np.log(v) - slope * (np.log(r) - center))


def stability(values, samples=None) -> dict:
    """ExecuTorch-style stability of ``values`` (one per run) and, for p99/p50, the step samples."""
    v = np.asarray(values, dtype=np.float64)
    s = np.asarray(samples if samples is not None else v, dtype=np.float64)
    cv = float(100 * v.std(ddof=1) / v.mean()) if v.size > 1 else None
    max_min = float(v.max() / v.min()) if v.size > 1 else None
    p99_p50 = float(np.percentile(s, 99) / np.percentile(s, 50))
    parts = [(0.25, max(0.0, 100 - 100 * (p99_p50 - 1)))]
    if cv is not None:
        parts += [(0.5, max(0.0, 100 - 10 * cv)), (0.25, max(0.0, 100 - 50 * (max_min - 1)))]
    score = sum(w * p for w, p in parts) / sum(w for w, _ in parts)
    rating = "excellent" if score >= 90 else "good" if score >= 80 else "moderate" if score >= 60 else "poor"
    return {"runs": int(v.size), "cv_pct": cv, "max_min": max_min, "p99_p50": p99_p50, "score": float(score),
            "rating": rating, "over": "runs" if cv is not None else "steps (one run: no between-run CV)"}


def robust_sigma(log_values) -> float:
    """Spread of log values: 1.4826 x MAD, never below the sample std's 0.5x (tiny sets tie on MAD)."""
    x = np.asarray(log_values, dtype=np.float64)
    if x.size < 2:
        return float("nan")
    mad = 1.4826 * float(np.median(np.abs(x - np.median(x))))
    return max(mad, 0.5 * float(x.std(ddof=1)))


@dataclass(frozen=True)
class RunComparison:
    """A candidate's runs against a baseline's runs (stored-baseline mode)."""

    stat: str
    baseline: float  # median run value (ms, or x reference when normalized)
    candidate: float
    diff_pct: float  # 100 * (candidate / baseline - 1)
    ci_low_pct: float
    ci_high_pct: float
    detectable_pct: float  # smallest slowdown these runs detect (one-sided confidence, 95% power)
    min_effect_pct: float
    detect_pct: float
    runs: tuple[int, int]  # (baseline, candidate)
    confidence: float
    verdict: str
    reference_slope: float | None = None  # the reference adjustment applied (None: raw run values)

    def to_dict(self) -> dict:
        return asdict(self)


def detectable_pct(sigma: float, n_base: int, n_cand: int, confidence: float) -> float:
    """Smallest relative change a median-vs-median test on these runs detects with 95% power."""
    from scipy.stats import norm

    if not np.isfinite(sigma):
        return float("inf")
    se = 1.2533 * sigma * np.sqrt(1.0 / n_base + 1.0 / n_cand)  # the median's efficiency vs the mean
    return float(100 * np.expm1((norm.ppf(confidence) + _POWER_Z) * se))


def compare_runs(baseline, candidate, stat: str = "p50", *, min_effect_pct: float = 5.0, detect_pct: float = 10.0,
                 confidence: float = 0.95, n_boot: int = 2000, seed: int = 0, baseline_reference=None,
                 candidate_reference=None, baseline_groups=None, slope: float | None = None) -> RunComparison:
    """Bootstrap CI (over runs) of median(candidate) / median(baseline), plus a minimum effect.

    With ``baseline_reference`` and ``candidate_reference`` (each run's reference p50), every run
    is first adjusted to the baseline's median host speed (:func:`adjust_runs`) with ``slope``, or
    with the slope fitted on the baseline's runs (:func:`reference_slope`, ``baseline_groups``
    naming each run's file) when ``slope`` is None.

    ``regression``: the one-sided ``confidence`` bound is above 0 and the estimate above
    ``min_effect_pct``; ``improvement`` likewise downwards; ``noisy`` when the runs cannot
    detect ``detect_pct`` (and no change beyond it is clear anyway); else ``unchanged``.
    """
    a, b = np.asarray(baseline, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1 or a.size < 2 or b.size < 1:
        raise ValueError(f"need >= 2 baseline runs and >= 1 candidate run, got shapes {a.shape} and {b.shape}")
    if (baseline_reference is None) != (candidate_reference is None):
        raise ValueError("pass reference values for both the baseline and the candidate runs, or for neither")
    if baseline_reference is not None:
        if slope is None:
            slope = reference_slope(a, baseline_reference, baseline_groups)
        center = float(np.median(np.log(np.asarray(baseline_reference, dtype=np.float64))))
        a, b = adjust_runs(a, baseline_reference, slope, center), adjust_runs(b, candidate_reference, slope, center)
    else:
        slope = None
    rng = np.random.default_rng(seed)
    ra = np.median(a[rng.integers(0, a.size, (n_boot, a.size))], axis=1)
    rb = np.median(b[rng.integers(0, b.size, (n_boot, b.size))], axis=1)
    diffs = 100 * (rb / ra - 1)
    tail = 100 * (1 - confidence)
    lo, hi = np.percentile(diffs, [tail, 100 - tail])  # one-sided bounds at `confidence`
    diff = float(100 * (np.median(b) / np.median(a) - 1))
    pooled = np.concatenate([np.log(a) - np.median(np.log(a)), np.log(b) - np.median(np.log(b))])
    sigma = robust_sigma(pooled) if b.size > 1 else robust_sigma(np.log(a))
    detectable = detectable_pct(sigma, a.size, b.size, confidence)
    if lo > 0 and diff > min_effect_pct and (detectable <= detect_pct or lo > detect_pct):
        v = "regression"
    elif hi < 0 and diff < -min_effect_pct and (detectable <= detect_pct or hi < -detect_pct):
        v = "improvement"
    elif detectable > detect_pct:
        v = "noisy"
    else:
        v = "unchanged"
    return RunComparison(stat, float(np.median(a)), float(np.median(b)), diff, float(lo), float(hi), detectable,
                         min_effect_pct, detect_pct, (int(a.size), int(b.size)), confidence, v,
                         None if slope is None else float(slope))


# ----------------------------------------------------------------------------- history mode


def change_points(values, *, alpha: float = 0.01, min_size: int = 3, min_effect_pct: float = 5.0) -> list[int]:
    """Indices where a new regime starts in a series (binary segmentation, Welch t-test on logs).

    A split is kept when its t-test p-value is below ``alpha`` and the medians of the two
    sides differ by more than ``min_effect_pct``; each side is then split again.
    """
    from scipy.stats import ttest_ind

    x = np.log(np.asarray(values, dtype=np.float64))

    def split(lo: int, hi: int) -> list[int]:
        best = None
        for k in range(lo + min_size, hi - min_size + 1):
            left, right = x[lo:k], x[k:hi]
            p = float(ttest_ind(left, right, equal_var=False).pvalue)
            if np.isfinite(p) and (best is None or p < best[1]):
                best = (k, p)
        if best is None:
            return []
        k, p = best
        shift = 100 * np.expm1(abs(np.median(x[k:hi]) - np.median(x[lo:k])))
        if p >= alpha or shift <= min_effect_pct:
            return []
        return [*split(lo, k), k, *split(k, hi)]

    return split(0, x.size)


@dataclass(frozen=True)
class HistoryComparison:
    """The newest result against the current regime of a main-branch history."""

    stat: str
    regime: float  # median value of the history after its last change point
    candidate: float
    diff_pct: float
    p_value: float  # one-sided: the candidate is slower than the regime
    detectable_pct: float
    min_effect_pct: float
    detect_pct: float
    history: int  # results in the history
    regime_size: int
    change_points: tuple[int, ...]  # indices into the history
    verdict: str

    def to_dict(self) -> dict:
        return asdict(self)


def compare_to_history(history, candidate: float, stat: str = "p50", *, min_effect_pct: float = 5.0,
                       detect_pct: float = 10.0, confidence: float = 0.95, min_regime: int = 4,
                       alpha_cp: float = 0.01) -> HistoryComparison:
    """Is ``candidate`` (one value per result, like ``history``) a change point at the end?"""
    from scipy.stats import t as student_t

    h = np.asarray(history, dtype=np.float64)
    cps = change_points(h, alpha=alpha_cp, min_effect_pct=min_effect_pct) if h.size >= 6 else []
    regime = h[cps[-1]:] if cps else h
    x, c = np.log(regime), float(np.log(candidate))
    n = x.size
    if n < min_regime:
        return HistoryComparison(stat, float(np.median(regime)) if n else float("nan"), float(candidate),
                                 float("nan"), float("nan"), float("inf"), min_effect_pct, detect_pct, int(h.size),
                                 int(n), tuple(cps), "noisy")
    center, sigma = float(np.median(x)), robust_sigma(x)
    scale = sigma * np.sqrt(1 + 1.2533 ** 2 / n)
    p = float(student_t.sf((c - center) / scale, n - 1)) if scale > 0 else float(c <= center) * 1.0
    crit = student_t.ppf(confidence, n - 1)
    detectable = float(100 * np.expm1((crit + _POWER_Z) * scale))
    diff = float(100 * np.expm1(c - center))
    if p < 1 - confidence and diff > min_effect_pct and (detectable <= detect_pct or diff > detectable):
        v = "regression"
    elif diff < -min_effect_pct and student_t.cdf((c - center) / scale, n - 1) < 1 - confidence:
        v = "improvement"
    elif detectable > detect_pct:
        v = "noisy"
    else:
        v = "unchanged"
    return HistoryComparison(stat, float(np.exp(center)), float(candidate), diff, p, detectable, min_effect_pct,
                             detect_pct, int(h.size), int(n), tuple(int(i) for i in cps), v)
