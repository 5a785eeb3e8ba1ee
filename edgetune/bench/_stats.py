"""Latency regression statistics: pure functions over arrays of samples (numpy only).

The question ``edgetune check --baseline`` asks: is the candidate's latency really higher
than the baseline's, by more than run-to-run noise?

1. **Significance** (within-run sampling noise): a seeded percentile bootstrap of the
   relative difference ``(stat(candidate) - stat(baseline)) / stat(baseline)`` in percent,
   for ``stat`` = median (p50) or p90. Samples are time-ordered and neighbours are
   correlated (a slow stretch of the device slows a run of steps), so whole blocks of
   consecutive samples are resampled (a block bootstrap; ``block=1`` is the plain one).
   When both sets were measured interleaved in one process (``bench_models``, block mode),
   block *i* of the baseline and block *i* of the candidate ran back to back, so the same
   block indices are drawn for both (``paired=True``): drift common to both cancels.
   Significant when the confidence interval excludes 0.
2. **Noise floor** (between-run noise the bootstrap cannot see: a new process, a new memory
   layout, another frequency step, a warmer chip): the same comparison on an A/A pair (the
   same model measured twice) tells how far apart two runs of one model land. The floor is
   the farthest end of the A/A interval from zero, i.e. the largest difference an A/A
   comparison is consistent with. A budgets key ``noise_floor_pct`` can set it instead (or
   too: the larger wins).

A change is a **regression** only if it is significant *and* its point estimate exceeds the
floor; an **improvement** likewise in the other direction; otherwise it is **unchanged**.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

STATS = {"p50": 50.0, "p90": 90.0, "p99": 99.0}


@dataclass(frozen=True)
class Comparison:
    """The bootstrap comparison of one statistic between a baseline and a candidate."""

    stat: str
    baseline: float  # the statistic on the baseline samples (ms)
    candidate: float  # the statistic on the candidate samples (ms)
    diff_pct: float  # point estimate of the relative difference, percent
    ci_low_pct: float
    ci_high_pct: float
    confidence: float
    n_boot: int
    block: int = 1
    paired: bool = False

    @property
    def significant(self) -> bool:
        return self.ci_low_pct > 0.0 or self.ci_high_pct < 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "significant": self.significant}


def _stat_of(samples: np.ndarray, stat: str, axis: int | None = None) -> np.ndarray:
    if stat not in STATS:
        raise ValueError(f"stat must be one of {', '.join(STATS)}, but got {stat!r}")
    return np.percentile(samples, STATS[stat], axis=axis)


def default_block(n: int) -> int:
    """Block length for ``n`` time-ordered samples: 20, but at least 20 blocks."""
    return max(1, min(20, n // 20))


def bootstrap_relative_diff(baseline, candidate, stat: str = "p50", *, n_boot: int = 2000,
                            confidence: float = 0.95, seed: int = 0, block: int = 1,
                            paired: bool = False) -> Comparison:
    """Percentile-bootstrap CI of ``100 * (stat(candidate) - stat(baseline)) / stat(baseline)``.

    Seeded (same inputs and seed -> same interval). Each of ``n_boot`` rounds resamples whole
    blocks of ``block`` consecutive samples with replacement (a trailing partial block is
    dropped); ``paired`` draws the same block indices for both sets, which must then have
    the same length. The interval is the central ``confidence`` mass of the rounds.
    """
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1 or a.size < 2 or b.size < 2:
        raise ValueError(f"need two 1-D sample sets of at least 2 values, got shapes {a.shape} and {b.shape}")
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0.5, 1), but got {confidence!r}")
    if block < 1 or min(a.size, b.size) // block < 2:
        raise ValueError(f"block must be >= 1 and leave >= 2 blocks, but got block={block} for {a.size}/{b.size} "
                         f"samples")
    if paired and a.size != b.size:
        raise ValueError(f"paired comparison needs equal sample counts, got {a.size} and {b.size}")
    rng = np.random.default_rng(seed)
    base_stat, cand_stat = float(_stat_of(a, stat)), float(_stat_of(b, stat))
    if base_stat <= 0:
        raise ValueError(f"baseline {stat} must be positive to compare relatively, but got {base_stat}")
    blocks_a = a[: a.size // block * block].reshape(-1, block)
    blocks_b = b[: b.size // block * block].reshape(-1, block)
    na, nb = len(blocks_a), len(blocks_b)
    diffs = np.empty(n_boot)
    chunk = max(1, 4_000_000 // max(a.size, b.size))  # bound memory: rounds per batch
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        ia = rng.integers(0, na, (k, na))
        ib = ia if paired else rng.integers(0, nb, (k, nb))
        ra = _stat_of(blocks_a[ia].reshape(k, -1), stat, axis=1)
        rb = _stat_of(blocks_b[ib].reshape(k, -1), stat, axis=1)
        diffs[start:start + k] = 100.0 * (rb - ra) / ra
    tail = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(diffs, [tail, 100.0 - tail])
    return Comparison(stat, base_stat, cand_stat, 100.0 * (cand_stat - base_stat) / base_stat,
                      float(lo), float(hi), confidence, n_boot, block, paired)


def noise_floor_from_aa(run_a, run_b, stat: str = "p50", *, n_boot: int = 2000, confidence: float = 0.95,
                        seed: int = 0, block: int = 1, paired: bool = False) -> float:
    """The noise floor (percent) from an A/A pair: the farthest end of its bootstrap interval from 0."""
    c = bootstrap_relative_diff(run_a, run_b, stat, n_boot=n_boot, confidence=confidence, seed=seed,
                                block=block, paired=paired)
    return max(abs(c.ci_low_pct), abs(c.ci_high_pct))


def verdict(comparison: Comparison, floor_pct: float) -> str:
    """``"regression"``, ``"improvement"`` or ``"unchanged"``: significant and beyond the floor."""
    if comparison.ci_low_pct > 0.0 and comparison.diff_pct > floor_pct:
        return "regression"
    if comparison.ci_high_pct < 0.0 and comparison.diff_pct < -floor_pct:
        return "improvement"
    return "unchanged"
