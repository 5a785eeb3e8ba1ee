"""Replay search strategies against a frozen table of measured configurations, through ``run_study``.

Every configuration of a grid was trained and measured once (a GPU machine writes the table,
schema in ``benchmarks/tables/README.md``). Each strategy here is a study config, and each run is
the product's own loop, ``edgetune.search.run_study``, with
:class:`edgetune.search.TableRunner` as its candidate runner: it answers from the table and
charges what the table says to a simulated clock of GPU-seconds. No loop, budget rule or
scheduler lives in this file (STYLE.md, "Benchmarks run the code that ships"):

* ``edgetune``: the configured sampler (NSGA-II or multi-objective TPE: ``--sampler``, a tuned
  choice) + ``precheck: true`` (latency-first rejection: the untrained candidate is measured,
  ``measure_seconds``; over budget -> never trained) + ``scheduler: moasha`` (a stopped trial
  costs only the epochs it ran and ends PRUNED);
* baselines, every trial trained fully (the budget is a constraint learnt after training):
  ``motpe`` (Optuna 5's default sampler, ``TPESampler()``, what ``create_study`` picks for a
  multi-objective study), ``nsga2`` (NSGA-II, population tuned), ``gp`` (``GPSampler``, which is
  multi-objective in Optuna 5; it needs torch and scipy, both dependencies of edgetune, and takes
  seconds a trial), ``random``;
* ``syne-moasha``: Syne Tune's MOASHA scheduler (``benchmarks/replay_syne.py``; the ``replay``
  extra; skipped, and said so, when syne-tune is missing);
* ablations (not baselines): ``edgetune-no-asha`` (MO-ASHA off) and ``edgetune-no-precheck``
  (latency-first rejection off). Resume of stopped trials is not an ablation: the product has none.

Same rules for all: objectives (wer = the table's test_wer, latency_ms), both minimised; the
budgets are the study's ``budgets`` (Optuna constraints); one ``measure_seconds`` per trial
(export + measurement) whoever runs it; a configuration proposed again is a duplicate that
``run_study`` answers from the earlier trial at no cost (a MO-ASHA-stopped one is trained again,
as the product does); a row with ``parity_passed`` 0 fails its trial with ``ParityError`` after its
training. ``--workers K`` runs K simulated workers on one clock. A run ends when the
horizon's GPU-seconds are spent (the trials in flight are interrupted) or the study's
``n_trials`` (``--n-trials-per-config`` x the grid size; duplicates count) are finished. The
front at cost ``t`` is the non-dominated set of fully trained, feasible configurations finished
by ``t``; the score is its hypervolume over the true front's (all feasible rows that passed the
parity gate), with a declared reference point.

Results, per latency budget (``--latency-budgets``, default ``tight=p25,loose=p50``, both in one
run): the HV fraction vs GPU-seconds over seeds (median, quartiles); median and IQR at 10/15/25/50 %
of the grid cost; one-sided Mann-Whitney U tests of edgetune against every other strategy
(``replay_stats.py``); the 25/50/75 % empirical attainment surfaces at 15 % and 25 % (moocore);
the goal. Renderers: ``replay_render.py``.

Usage::

    python benchmarks/replay.py --table benchmarks/tables/<name>.csv --out reports/replay/<name> --tune --jobs 2
    python benchmarks/replay.py --synthetic --out runs/replay-synthetic     # development only

``--tune`` picks edgetune's knobs (and NSGA-II's population, Syne Tune MOASHA's first rung and
reduction factor) per budget on the tuning seeds (100-109 by default), then reports on different
seeds (0-19). ``--jobs N`` runs N replays at a time in processes; the numbers do not change.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

# siblings in benchmarks/: a script's own directory is first on sys.path (tests put it there too)
import replay_syne
from replay_stats import attainment_surfaces, mann_whitney_greater, quartiles

from edgetune.errors import ConfigError, DataError
from edgetune.report import hypervolume, pareto_mask
from edgetune.search import Budget, StudyConfig, TableRunner

REPO = Path(__file__).resolve().parents[1]

KNOBS = ("bits", "sparsity", "depth_multiplier", "chunk_ms")
TAIL_COLUMNS = (
    "test_wer",
    "worst_group_wer",
    "latency_ms",
    "size_bytes",
    "train_gpu_seconds",
    "epoch_gpu_seconds",
    "measure_seconds",
)
# optional, after the required ones: the export parity gate's verdict (0: the trial fails with
# ParityError, as the product's does), and what benchmarks/gpu_grid.py records of a derived candidate
OPTIONAL_COLUMNS = ("parity_passed", "wer_base", "quant_cost", "export_error")


@dataclass(frozen=True)
class Strategy:
    """One replayed strategy: who proposes (``sampler``: ``edgetune``, the tuned choice of NSGA-II
    or TPE; an Optuna sampler name; or ``syne-moasha``), and which of edgetune's two tricks it uses."""

    name: str
    sampler: str
    precheck: bool  # latency-first rejection (the study's ``precheck``)
    asha: bool  # early stopping at rungs (the study's ``scheduler: moasha``, or Syne Tune's own)
    role: str  # "edgetune" | "baseline" | "ablation"
    about: str


STRATEGY_SPECS = {s.name: s for s in (
    Strategy("edgetune", "edgetune", True, True, "edgetune",
             "the tuned sampler + latency-first rejection (precheck) + MO-ASHA, through run_study"),
    Strategy("motpe", "tpe", False, False, "baseline",
             "Optuna 5's default multi-objective sampler (TPESampler(), what create_study picks), full training"),
    Strategy("nsga2", "nsga2", False, False, "baseline", "Optuna NSGAIISampler (population tuned), full training"),
    Strategy("gp", "gp", False, False, "baseline", "Optuna GPSampler (multi-objective: log EHVI), full training"),
    Strategy("random", "random", False, False, "baseline", "Optuna RandomSampler, full training"),
    Strategy("syne-moasha", "syne-moasha", False, True, "baseline",
             "Syne Tune's MOASHA scheduler (random proposals, multi-objective successive halving on dev WER "
             "and latency), benchmarks/replay_syne.py"),
    Strategy("edgetune-no-asha", "edgetune", True, False, "ablation", "edgetune with MO-ASHA switched off"),
    Strategy("edgetune-no-precheck", "edgetune", False, True, "ablation",
             "edgetune with latency-first rejection switched off (the untrained measurement still feeds MO-ASHA)"),
)}
STRATEGIES = tuple(STRATEGY_SPECS)
BASELINES = tuple(n for n, s in STRATEGY_SPECS.items() if s.role == "baseline")
ABLATIONS = tuple(n for n, s in STRATEGY_SPECS.items() if s.role == "ablation")
LATENCY_FIRST = tuple(n for n, s in STRATEGY_SPECS.items() if s.precheck)
EARLY_STOPPING = tuple(n for n, s in STRATEGY_SPECS.items() if s.asha)
OPTIONAL_STRATEGIES = {"syne-moasha": (replay_syne.available, replay_syne.EXTRA_HINT)}
CHECKPOINTS = (0.10, 0.15, 0.25, 0.50)
EAF_CHECKPOINTS = (0.15, 0.25)
EAF_PERCENTILES = (25, 50, 75)


def available_strategies() -> tuple[str, ...]:
    """The strategies whose optional dependencies are installed (the default ``--strategies``)."""
    return tuple(s for s in STRATEGIES if s not in OPTIONAL_STRATEGIES or OPTIONAL_STRATEGIES[s][0]())
GOAL_FRACTION, GOAL_COST, GOAL_ALPHA = 0.95, 0.15, 0.1
REF_FACTOR = 1.1  # reference point: 1.1 x the worst feasible value of each objective


# ---- the table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A validated grid: one row per configuration, indexed by its knob tuple."""

    df: pd.DataFrame
    epochs: int
    grid: dict[str, list[Any]]
    source: str
    kind: str  # "measured" | "synthetic"
    sha256: str
    rows: dict[tuple, dict[str, Any]]  # knob tuple -> plain-float row, for fast lookups

    @property
    def total_cost(self) -> float:
        """The grid's cost: the sum of ``train_gpu_seconds`` over all rows."""
        return float(self.df["train_gpu_seconds"].sum())

    def row(self, key: tuple) -> dict[str, Any]:
        """The row of one configuration as plain floats (``dev_wer``: the per-epoch list)."""
        return self.rows[key]

    def dev_wer(self, key: tuple, epoch: int) -> float:
        return self.rows[key]["dev_wer"][epoch - 1]


def expected_columns(epochs: int) -> list[str]:
    return [*KNOBS, "epochs", *(f"dev_wer_{e}" for e in range(1, epochs + 1)), *TAIL_COLUMNS]


def _flag(v: Any) -> float:
    """0/1 from a CSV cell (0, 1, 0.0, 1.0, true, false); NaN for anything else."""
    text = str(v).strip().lower()
    return {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}.get(text, np.nan)


def _native(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def validate_table(df: pd.DataFrame, source: str, kind: str = "measured") -> Table:
    """Check the schema of ``benchmarks/tables/README.md`` and return the indexed table.

    Raises DataError naming ``source``, the column or row, and the fix.
    """
    cols = list(df.columns)
    if "epochs" not in cols:
        raise DataError(f"{source}: no 'epochs' column. Fix: write the columns of benchmarks/tables/README.md")
    if df.empty:
        raise DataError(f"{source}: the table has no rows")
    ep = pd.to_numeric(df["epochs"], errors="coerce")
    if ep.isna().any() or (ep != ep.round()).any() or ep.nunique() != 1 or int(ep.iloc[0]) < 1:
        raise DataError(
            f"{source}: 'epochs' must be one integer >= 1 shared by every row (the fidelity the grid was "
            f"trained at), but got {sorted(set(df['epochs'].astype(str)))}"
        )
    epochs = int(ep.iloc[0])
    want = expected_columns(epochs)
    missing = [c for c in want if c not in cols]
    extra = [c for c in cols if c not in want and c not in OPTIONAL_COLUMNS]
    if missing or extra:
        raise DataError(
            f"{source}: columns do not match the schema for epochs={epochs}; missing {missing}, unexpected "
            f"{extra}. Fix: the columns are {','.join(want)}, then optionally {','.join(OPTIONAL_COLUMNS)} "
            "(benchmarks/tables/README.md)"
        )
    optional = [c for c in OPTIONAL_COLUMNS if c in cols]
    df = df[want + optional].copy()
    if "parity_passed" in optional:
        flag = df["parity_passed"].map(_flag)
        bad = df.index[flag.isna()]
        if len(bad):
            r = bad[0]
            raise DataError(
                f"{source}: column 'parity_passed' must be 0 or 1 (true/false) in every row, but row {r + 2} (line of "
                f"the CSV) has {df.at[r, 'parity_passed']!r}. Fix: 1 if the exported file passed the parity gate"
            )
        df["parity_passed"] = flag.astype(int)
    for c in optional:
        if c == "parity_passed":
            continue
        num = pd.to_numeric(df[c], errors="coerce")
        bad = df.index[(df[c].notna() & num.isna()) | np.isinf(num.astype(float))]
        if len(bad):
            r = bad[0]
            raise DataError(f"{source}: column {c!r} must hold numbers or be empty, but row {r + 2} has {df.at[r, c]!r}")
        df[c] = num.astype(float)
    for c in want:
        num = pd.to_numeric(df[c], errors="coerce")
        bad = df.index[num.isna() | ~np.isfinite(num.astype(float))]
        if len(bad):
            r = bad[0]
            raise DataError(
                f"{source}: column {c!r} must hold finite numbers, but row {r + 2} (line of the CSV) has "
                f"{df.at[r, c]!r}. Fix: re-measure that configuration or drop the grid value"
            )
        df[c] = num
    for c in ("bits", "chunk_ms"):
        if (df[c] != df[c].round()).any():
            raise DataError(f"{source}: column {c!r} must hold integers, but got {sorted(df[c].unique())}")
        df[c] = df[c].astype(int)
    nonneg = [f"dev_wer_{e}" for e in range(1, epochs + 1)] + list(TAIL_COLUMNS)
    for c in nonneg:
        if (df[c] < 0).any():
            raise DataError(f"{source}: column {c!r} must be >= 0, but its minimum is {df[c].min()!r}")
    for c in ("latency_ms", "train_gpu_seconds", "epoch_gpu_seconds"):
        if (df[c] <= 0).any():
            raise DataError(f"{source}: column {c!r} must be > 0, but its minimum is {df[c].min()!r}")
    dup = df.duplicated(list(KNOBS), keep=False)
    if dup.any():
        first = df.loc[dup, list(KNOBS)].iloc[0].to_dict()
        raise DataError(f"{source}: configuration {first} appears {int(dup.sum())} times; keep one row per configuration")
    grid = {k: sorted(_native(v) for v in df[k].unique()) for k in KNOBS}
    n_grid = math.prod(len(v) for v in grid.values())
    if n_grid != len(df):
        have = set(map(tuple, df[list(KNOBS)].itertuples(index=False, name=None)))
        gaps = [c for c in itertools.product(*grid.values()) if c not in have]
        raise DataError(
            f"{source}: not a full grid: {len(df)} rows for {n_grid} combinations of {grid}; missing e.g. "
            f"{[dict(zip(KNOBS, g)) for g in gaps[:3]]}. Fix: measure the missing rows (a sampler may ask for any)"
        )
    df = df.set_index(list(KNOBS)).sort_index()
    sha = hashlib.sha256(df.reset_index().to_csv(index=False).encode()).hexdigest()
    dev = [f"dev_wer_{e}" for e in range(1, epochs + 1)]
    rows = {
        key: {c: float(r[c]) for c in TAIL_COLUMNS} | {"dev_wer": [float(r[c]) for c in dev]}
        | ({"parity_passed": bool(r["parity_passed"])} if "parity_passed" in r else {})
        for key, r in zip(df.index, df.to_dict("records"))
    }
    return Table(df=df, epochs=epochs, grid=grid, source=source, kind=kind, sha256=sha, rows=rows)


def load_table(path: str | Path) -> Table:
    """Read and validate a measured table (CSV)."""
    p = Path(path)
    try:
        df = pd.read_csv(p)
    except FileNotFoundError:
        raise DataError(f"{p}: no such table. Fix: pass --table with a CSV under benchmarks/tables/") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: not a readable CSV table: {exc}") from None
    return validate_table(df, str(p), kind="measured")


def synthetic_table(
    seed: int = 0,
    epochs: int = 9,
    bits: Sequence[int] = (4, 8, 32),
    sparsity: Sequence[float] = (0.0, 0.25, 0.5, 0.75),
    depth_multiplier: Sequence[float] = (0.5, 0.75, 1.0),
    chunk_ms: Sequence[int] = (160, 320, 640, 1280),
    prune_at: float = 0.4,
    qat_fraction: float = 0.4,
) -> pd.DataFrame:
    """A SYNTHETIC table for developing the harness; no number in it was measured.

    Plausible shapes, not data: WER grows as width, chunk and bits shrink and sparsity grows
    (more so for narrow models); learning curves decay exponentially, jump when pruning hits
    (``prune_at`` of training) and when QAT starts (for the last ``qat_fraction``), as
    ``TrainSettings`` schedules them, then recover; before those epochs a curve shows nothing
    of the compression to come;
    latency = chunk + compute (compute ~ width^2, pruning, 4/8-bit on the int8 grid); cost
    per epoch ~ width^2 (+25% for QAT). Per-configuration noise makes rankings imperfect.
    """
    rng = np.random.default_rng(seed)
    prune_epoch = max(1, math.ceil(prune_at * epochs))
    qat_epoch = max(1, math.ceil((1 - qat_fraction) * epochs))
    rows = []
    for b, s, d, c in itertools.product(bits, sparsity, depth_multiplier, chunk_ms):
        base = 0.10 + 0.10 * (1 / d - 1) + 0.08 * (320 / c) ** 0.7 + rng.normal(0, 0.008)
        sparse_pen = 0.03 * (s / 0.5) ** 2 / d
        bits_pen = {32: 0.0, 16: 0.001, 8: 0.006, 4: 0.04 / d}[b]
        final = base + sparse_pen + bits_pen + rng.normal(0, 0.006)
        tau = 1.5 + 1.0 * (1 - d) + rng.uniform(-0.3, 0.3)
        start = 0.95 + rng.normal(0, 0.02)
        dev = []
        for e in range(1, epochs + 1):
            w = base + (start - base) * math.exp(-e / tau)
            if e >= prune_epoch:
                w += sparse_pen + 0.5 * s**1.5 * math.exp(-(e - prune_epoch) / 1.2)
            if b in (4, 8) and e >= qat_epoch:
                w += bits_pen + (0.05 if b == 4 else 0.01) * math.exp(-(e - qat_epoch) / 1.0)
            dev.append(max(0.0, w + rng.normal(0, 0.006)))
        dev[-1] = max(0.0, final + rng.normal(0, 0.004))
        test = max(0.0, final + rng.normal(0, 0.006))
        flops = d * d * (1 - 0.8 * s)
        compute = 60.0 * flops * (c / 320) * (0.4 if b in (4, 8) else 1.0) * (0.95 if b == 4 else 1.0)
        latency = c + compute * (1 + abs(rng.normal(0, 0.03))) + 2.0
        size = 4.0e6 * d * d * (1 - s) * b / 8 + 20_000
        epoch_s = 60.0 * (0.3 + d * d) * (1.25 if b in (4, 8) else 1.0) * (1 + rng.normal(0, 0.03))
        rows.append(
            [b, s, d, c, epochs, *np.round(dev, 5), round(test, 5), round(test * 1.4 + abs(rng.normal(0, 0.01)), 5),
             round(latency, 3), int(size), round(epoch_s * epochs, 3), round(epoch_s, 3), round(20.0 + 10.0 * d, 3)]
        )
    return pd.DataFrame(rows, columns=expected_columns(epochs))


# ---- the problem ----------------------------------------------------------------------------


def make_budgets(max_latency_ms: float | None = None, max_size_bytes: float | None = None) -> tuple[Budget, ...]:
    """The study's budgets as the product writes them (``latency_ms <= x``, ``size_bytes <= y``)."""
    out = []
    if max_latency_ms is not None:
        out.append(Budget("latency_ms", "<=", float(max_latency_ms)))
    if max_size_bytes is not None:
        out.append(Budget("size_bytes", "<=", float(max_size_bytes)))
    return tuple(out)


@dataclass(frozen=True)
class Problem:
    """What every strategy is scored on: budgets, reference point, the true front."""

    budgets: tuple[Budget, ...]
    reference: tuple[float, float]
    true_hv: float
    true_front: list[dict[str, Any]]
    n_feasible: int
    budget_note: str
    reference_rule: str
    n_parity_failed: int = 0  # within the budgets, but failed the export parity gate (never on a front)


def make_problem(table: Table, budgets: Sequence[Budget], budget_note: str = "", wer_ref: float | None = None) -> Problem:
    """Feasible rows, the reference point and the true front.

    Feasible: within the budgets and, where the table has ``parity_passed``, through the export
    parity gate (a row that fails it fails its trial, so it is on no strategy's front).

    Reference point: ``1.1 x`` the largest feasible ``latency_ms``, and ``1.1 x`` the largest
    feasible ``test_wer`` unless ``wer_ref`` is given (e.g. 1.0). A reference near the
    feasible nadir keeps the hypervolume fraction sensitive to the front itself; with
    ``wer_ref = 1.0`` most of the volume lies between the worst model and WER 1.0, which
    every strategy gets almost at once.
    """
    df = table.df
    budgets = tuple(budgets)
    cols = {"latency_ms": df["latency_ms"].to_numpy(float), "size_bytes": df["size_bytes"].to_numpy(float)}
    feasible = np.ones(len(df), dtype=bool)
    for b in budgets:
        if b.metric not in cols:
            raise ConfigError(f"budget '{b}': a table replay budgets latency_ms or size_bytes only")
        feasible &= np.array([b.satisfied(v) for v in cols[b.metric]])
    n_parity_failed = 0
    if "parity_passed" in df.columns:  # a file that fails the parity gate never completes a trial
        passed = df["parity_passed"].to_numpy(int) == 1
        n_parity_failed = int((feasible & ~passed).sum())
        feasible &= passed
    if not feasible.any():
        raise ConfigError(f"no configuration of {table.source} meets the budgets {[str(b) for b in budgets]}. Fix: relax them")
    pts = df[["test_wer", "latency_ms"]].to_numpy(float)
    lat_ref = float(df["latency_ms"][feasible].max() * REF_FACTOR)
    if wer_ref is None:
        wer_ref = float(df["test_wer"][feasible].max() * REF_FACTOR)
        rule = f"test_wer = {REF_FACTOR} x the largest feasible test_wer"
    else:
        rule = f"test_wer = {wer_ref:g} (given)"
    rule += f"; latency_ms = {REF_FACTOR} x the largest feasible latency_ms"
    ref = (float(wer_ref), lat_ref)
    true_hv = hypervolume(_canonical(pts[feasible]), ref)
    if true_hv <= 0:
        raise DataError(f"{table.source}: every feasible configuration has test_wer >= {wer_ref}; nothing to compare")
    front_idx = np.flatnonzero(pareto_mask(pts, feasible))
    front = [dict(zip(KNOBS, map(_native, df.index[i]))) | {"test_wer": pts[i, 0], "latency_ms": pts[i, 1]} for i in front_idx]
    front.sort(key=lambda r: r["latency_ms"])
    return Problem(budgets, ref, float(true_hv), front, int(feasible.sum()), budget_note, rule, n_parity_failed)


def _canonical(points: np.ndarray) -> np.ndarray:
    """The front of ``points`` in a fixed order, so equal sets give bit-equal hypervolumes."""
    pts = np.asarray(points, float).reshape(-1, 2)
    if len(pts) == 0:
        return pts
    front = np.unique(pts[pareto_mask(pts)], axis=0)
    return front


# ---- one run of one strategy: a study config, replayed through run_study ---------------------


@dataclass(frozen=True)
class Settings:
    """Knobs of the strategies. edgetune's are tuned with ``--tune`` (on tuning seeds only)."""

    sampler: str = "nsga2"  # edgetune's sampler: "nsga2" or "tpe" (which learns from stopped trials)
    population_size: int = 8  # edgetune's NSGA-II
    eta: int = 3
    min_epochs: int = 1
    min_peers: int = 6
    nsga2_population_size: int = 8  # the NSGA-II baseline's
    tpe_startup_trials: int = 10  # Optuna's default (TPE and GP)
    syne_grace_period: int = 1  # Syne Tune MOASHA's first rung (its default), tuned with --tune
    syne_reduction_factor: int = 3  # Syne Tune MOASHA's eta (its default), tuned with --tune
    workers: int = 1  # simulated workers on one clock (K GPUs, K trials in flight)
    n_trials_per_config: int = 3  # the study's n_trials = this x the grid size (duplicates count, as in the product)


def study_config(strategy: str, table: Table, problem: Problem, seed: int, s: Settings) -> StudyConfig:
    """The product's study config of one strategy: what a user would write in study.yaml."""
    spec = STRATEGY_SPECS.get(strategy)
    if spec is None or spec.sampler == "syne-moasha":
        raise ConfigError(f"no study config for strategy {strategy!r}; the run_study strategies are "
                          f"{', '.join(n for n, x in STRATEGY_SPECS.items() if x.sampler != 'syne-moasha')}")
    if spec.sampler == "edgetune":
        if s.sampler not in ("nsga2", "tpe"):
            raise ConfigError(f"edgetune's sampler must be 'nsga2' or 'tpe', but got {s.sampler!r}")
        sampler = {"name": s.sampler, "population_size": s.population_size, "n_startup_trials": s.tpe_startup_trials}
    else:
        sampler = {"nsga2": {"name": "nsga2", "population_size": s.nsga2_population_size},
                   "tpe": {"name": "tpe", "n_startup_trials": s.tpe_startup_trials},
                   "gp": {"name": "gp", "n_startup_trials": s.tpe_startup_trials},
                   "random": {"name": "random"}}[spec.sampler]
    scheduler = {"name": "moasha", "eta": s.eta, "min_epochs": s.min_epochs, "min_peers": s.min_peers} \
        if spec.asha and s.min_epochs < table.epochs else {"name": "none"}
    return StudyConfig.from_dict({
        "study_name": f"replay-{strategy}-{seed}",
        "n_trials": s.n_trials_per_config * len(table.df),
        "seed": seed,
        "dataset": "grid",  # the corpus the table was measured on; a table replay reads no audio
        "space": {k: list(v) for k, v in table.grid.items()},
        "train": {"epochs": table.epochs},
        "objectives": ["wer", "latency_ms"],
        "budgets": [f"{b.metric} {b.op} {b.bound!r}" for b in problem.budgets],
        "precheck": spec.precheck and bool(problem.budgets),
        "scheduler": scheduler,
        "sampler": {**sampler, "enqueue_baseline": False},
    })


@dataclass
class Run:
    """One strategy, one seed: the GPU-seconds at each fully trained configuration's end, and the HV then."""

    strategy: str
    seed: int
    costs: list[float] = field(default_factory=lambda: [0.0])
    hvs: list[float] = field(default_factory=lambda: [0.0])
    asks: int = 0
    evaluated: int = 0
    full: int = 0
    stopped: int = 0
    rejected: int = 0
    failed: int = 0  # FAIL for a reason of the candidate's (a parity failure)
    duplicates: int = 0
    repeats: int = 0  # proposed again and trained again (Syne Tune's tuner does not reuse results)
    interrupted: int = 0
    stop_reason: str = ""
    gpu_seconds: float = 0.0
    spent: dict[str, float] = field(default_factory=dict)
    trials: list[dict[str, Any]] = field(default_factory=list)  # each trial of the study, in order
    finished: list[tuple[float, float, float]] = field(default_factory=list)  # (GPU-s, wer, latency) feasible full
    wall_seconds: float = 0.0  # this machine's time for the run

    def hv_at(self, costs: np.ndarray) -> np.ndarray:
        """Hypervolume reached by each clock value (a step function: a trial counts when it ends)."""
        idx = np.searchsorted(np.asarray(self.costs), costs, side="right") - 1
        return np.asarray(self.hvs)[idx]

    def front_at(self, cost: float) -> np.ndarray:
        """The (wer, latency) front of the feasible, fully trained configurations finished by ``cost``."""
        return _canonical(np.array([(w, lat) for c, w, lat in self.finished if c <= cost]).reshape(-1, 2))

    def summary(self) -> dict[str, Any]:
        return {
            "seed": self.seed, "asks": self.asks, "evaluated": self.evaluated, "fully_trained": self.full,
            "stopped_early": self.stopped, "rejected_before_training": self.rejected, "failed": self.failed,
            "duplicates": self.duplicates, "repeats_trained_again": self.repeats,
            "interrupted_at_budget": self.interrupted,
            "gpu_seconds": self.gpu_seconds, "spent": self.spent, "end": self.stop_reason,
            "final_hv": self.hvs[-1], "wall_seconds": round(self.wall_seconds, 2),
        }


def simulate(strategy: str, table: Table, problem: Problem, seed: int, settings: Settings, horizon: float,
             study_dir: Path | None = None) -> Run:
    """Replay ``strategy`` until ``horizon`` GPU-seconds are spent or its ``n_trials`` are finished:
    as a study through ``run_study`` (``TableRunner``), then read the study; or, for
    ``syne-moasha``, through Syne Tune's scheduler (``benchmarks/replay_syne.py``)."""
    t0 = time.monotonic()
    if strategy == "syne-moasha":
        run = _simulate_syne(table, problem, seed, settings, horizon)
        run.wall_seconds = time.monotonic() - t0
        return run
    config = study_config(strategy, table, problem, seed, settings)
    runner = TableRunner(table.rows, table.epochs, source=table.source)
    with tempfile.TemporaryDirectory(prefix="replay-") as tmp:
        where = Path(study_dir) if study_dir is not None else Path(tmp)
        rep = runner.replay(config, where, workers=settings.workers, gpu_seconds=horizon)
        trials = _load_trials(config, where)
    records = [_record(t) for t in trials]
    run = _run_from_records(strategy, seed, records, rep.end, rep.spent, problem, settings.workers)
    run.wall_seconds = time.monotonic() - t0
    return run


def _simulate_syne(table: Table, problem: Problem, seed: int, settings: Settings, horizon: float) -> Run:
    if not replay_syne.available():
        raise ConfigError(f"strategy syne-moasha needs syne-tune, which is not installed. Fix: {replay_syne.EXTRA_HINT}")

    def feasible(row: dict[str, Any]) -> bool:
        return all(b.satisfied(row[b.metric]) for b in problem.budgets)

    records, end, spent = replay_syne.run_moasha(
        table.rows, table.epochs, table.grid, feasible=feasible, seed=seed, gpu_seconds=horizon,
        workers=settings.workers, n_trials=settings.n_trials_per_config * len(table.df),
        grace_period=settings.syne_grace_period, reduction_factor=settings.syne_reduction_factor)
    return _run_from_records("syne-moasha", seed, records, end, spent, problem, settings.workers)


def _load_trials(config: StudyConfig, study_dir: Path) -> list[Any]:
    from edgetune.search import StudyPaths, open_study

    return open_study(config, StudyPaths(study_dir), create=False).get_trials(deepcopy=False)


def _record(t: Any) -> dict[str, Any]:
    """One trial of the study as the product recorded it: its outcome, knobs, cost-relevant facts."""
    a = t.user_attrs
    dup = "duplicate_of" in a
    outcome = ("interrupted" if t.state.name == "FAIL" and a.get("interrupted") else
               "duplicate" if dup else
               "full" if t.state.name == "COMPLETE" else
               "rejected" if "rejected_by_budget" in a else
               "stopped" if "stopped_at_rung" in a else
               "failed" if t.state.name == "FAIL" and "fail_reason" in a else t.state.name.lower())
    rec = {"number": t.number, "key": tuple(a["knobs"][k] for k in KNOBS) if "knobs" in a else None,
           "outcome": outcome, "feasible": all(v <= 0 for v in (t.constraints or {}).values()),
           "epochs": a.get("stopped_at_epoch", a.get("epochs_run")), "finished_at": a.get("finished_at")}
    if outcome == "failed":
        rec["fail_type"] = a.get("fail_type")
    if outcome == "full":
        rec["values"] = tuple(t.values)
    return rec


def _run_from_records(strategy: str, seed: int, records: list[dict[str, Any]], end: str, spent: dict[str, float],
                      problem: Problem, workers: int) -> Run:
    """Costs and the front over time, from each trial's record (what the product, or Syne Tune's
    scheduler, decided). A trial counts when it ends: ``finished_at`` is wall time on ``workers``
    GPUs, so its GPU-seconds are ``workers x finished_at``."""
    run = Run(strategy, seed, stop_reason=end, spent=dict(spent), gpu_seconds=sum(spent.values()))
    run.asks = len(records)
    done = []
    for rec in records:
        o = rec["outcome"]
        run.trials.append({k: v for k, v in rec.items() if k != "values"})
        run.duplicates += o == "duplicate"
        run.repeats += bool(rec.get("repeat")) and o != "interrupted"
        run.interrupted += o == "interrupted"
        run.full += o == "full"
        run.stopped += o == "stopped"
        run.rejected += o == "rejected"
        run.failed += o == "failed"
        if o == "full" and rec["feasible"]:
            done.append((float(rec["finished_at"]) * workers, tuple(rec["values"])))
    run.evaluated = run.full + run.stopped + run.rejected + run.failed
    front: list[tuple[float, float]] = []
    for cost, values in sorted(done, key=lambda x: x[0]):
        run.finished.append((cost, *values))
        front = [tuple(p) for p in _canonical(np.array(front + [values]))]
        run.costs.append(cost)
        run.hvs.append(hypervolume(np.array(front), problem.reference))
    return run


# ---- many seeds, statistics -------------------------------------------------------------------


def _simulate_task(task: tuple) -> Run:
    return simulate(*task)


def simulate_many(table: Table, problem: Problem, tasks: Sequence[tuple[str, int, Settings]], horizon: float,
                  jobs: int = 1) -> list[Run]:
    """``simulate`` for each ``(strategy, seed, settings)``, in order; ``jobs > 1`` runs them in as
    many processes (each run is deterministic, so the results do not depend on ``jobs``)."""
    args = [(strategy, table, problem, seed, settings, horizon) for strategy, seed, settings in tasks]
    if jobs <= 1 or len(args) <= 1:
        return [_simulate_task(a) for a in args]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(min(jobs, len(args)), mp_context=multiprocessing.get_context("fork"),
                             initializer=_one_thread) as pool:
        return list(pool.map(_simulate_task, args, chunksize=1))


def _one_thread() -> None:
    """One compute thread per worker process (Optuna's GPSampler runs on torch, which would take every core)."""
    import torch

    torch.set_num_threads(1)


def run_all(table: Table, problem: Problem, seeds: Iterable[int], settings: Settings, horizon_fraction: float,
            strategies: Sequence[str] = STRATEGIES, jobs: int = 1) -> dict[str, list[Run]]:
    seeds = list(seeds)
    tasks = [(s, seed, settings) for s in strategies for seed in seeds]
    runs = iter(simulate_many(table, problem, tasks, horizon_fraction * table.total_cost, jobs))
    return {s: [next(runs) for _ in seeds] for s in strategies}


def fractions(runs: list[Run], problem: Problem, costs: np.ndarray) -> np.ndarray:
    """(seeds x cost points) hypervolume fractions."""
    return np.stack([r.hv_at(costs) / problem.true_hv for r in runs])


def checkpoints_for(horizon_fraction: float) -> tuple[float, ...]:
    """The reported shares of the grid cost that a run of this horizon reaches."""
    return tuple(c for c in CHECKPOINTS if c <= horizon_fraction + 1e-12)


def checkpoint_stats(runs: dict[str, list[Run]], problem: Problem, table: Table,
                     checkpoints: Sequence[float] = CHECKPOINTS) -> dict[str, Any]:
    """Per checkpoint: each strategy's HV fractions over seeds (median, quartiles, IQR, values) and
    the one-sided Mann-Whitney p-value that edgetune's are greater than each other strategy's."""
    out: dict[str, Any] = {}
    for cp in checkpoints:
        c = np.array([cp * table.total_cost])
        vals = {s: fractions(rs, problem, c)[:, 0] for s, rs in runs.items()}
        entry: dict[str, Any] = {s: {**quartiles(v), "values": v.tolist()} for s, v in vals.items()}
        if "edgetune" in vals:
            entry["p_value_edgetune_greater"] = {
                b: mann_whitney_greater(vals["edgetune"], vals[b]) for b in vals if b != "edgetune"
            }
        out[f"{cp:g}"] = entry
    return out


def eaf_stats(runs: dict[str, list[Run]], problem: Problem, table: Table,
              checkpoints: Sequence[float] = EAF_CHECKPOINTS) -> dict[str, Any]:
    """Per checkpoint and strategy: the 25/50/75 % empirical attainment surfaces over seeds of the
    feasible fronts at that cost, and the hypervolume fraction of each surface."""
    out: dict[str, Any] = {}
    for cp in checkpoints:
        entry = {}
        for s, rs in runs.items():
            surfaces = attainment_surfaces([r.front_at(cp * table.total_cost) for r in rs], problem.reference,
                                           EAF_PERCENTILES)
            entry[s] = {str(p): {"points": surf.tolist(),
                                 "hv_fraction": hypervolume(surf, problem.reference) / problem.true_hv if len(surf) else 0.0}
                        for p, surf in surfaces.items()}
        out[f"{cp:g}"] = entry
    return out


def cost_to_reach(runs: list[Run], problem: Problem, table: Table, target: float) -> list[float | None]:
    """Per seed: the grid-cost fraction at which the HV fraction first reaches ``target`` (None: never)."""
    out: list[float | None] = []
    for r in runs:
        hit = [c for c, h in zip(r.costs, r.hvs) if h / problem.true_hv >= target - 1e-12]
        out.append(hit[0] / table.total_cost if hit else None)
    return out


# ---- tuning (on seeds that are never reported) -----------------------------------------------

def tune_grid(epochs: int) -> dict[str, tuple[Any, ...]]:
    """edgetune's candidate settings: the sampler, eta, and the first rung at about 1/9, 2/9,
    1/3, 4/9 or 2/3 of training. (On the synthetic tables NSGA-II populations of 16-24 and
    ``min_peers`` 3 never beat population 8 and ``min_peers`` 6 beyond noise; those stay fixed,
    and the baselines' own knobs are tuned over ``BASELINE_GRIDS``.)"""
    firsts = sorted({max(1, round(epochs * f)) for f in (1 / 9, 2 / 9, 1 / 3, 4 / 9, 2 / 3)} - {epochs})
    return {"sampler": ("nsga2", "tpe"), "eta": (2, 3), "min_epochs": tuple(firsts or [1])}


BASELINE_POPULATIONS = (8, 16, 24)
# the baselines' knobs tuned on the same seeds: NSGA-II's population, Syne Tune MOASHA's first rung
# and reduction factor; TPE, GP and random search keep Optuna's defaults (TPE/GP: 10 random startup trials)
BASELINE_GRIDS: dict[str, dict[str, tuple[Any, ...]]] = {
    "nsga2": {"nsga2_population_size": BASELINE_POPULATIONS},
    "syne-moasha": {"syne_grace_period": (1, 2), "syne_reduction_factor": (2, 3)},
}


def _score(runs: list[Run], problem: Problem, table: Table) -> tuple[float, float]:
    """Tuning score: mean HV fraction over [10%, 20%] of the grid cost (around the goal's 15%,
    less noisy than the single point), then mean over [0, 25%]."""
    near = fractions(runs, problem, np.linspace(0.10, 0.20, 21) * table.total_cost).mean()
    auc = fractions(runs, problem, np.linspace(0, 0.25, 51) * table.total_cost).mean()
    return float(near), float(auc)


def tune(table: Table, problem: Problem, seeds: Sequence[int], base: Settings, horizon_fraction: float,
         grid: dict[str, Sequence[int]] | None = None, strategies: Sequence[str] = ("edgetune", "nsga2"),
         jobs: int = 1) -> tuple[Settings, dict[str, Any]]:
    """Pick edgetune's knobs, and the tuned baselines' (``BASELINE_GRIDS``, those in ``strategies``), by score on ``seeds``."""
    grid = tune_grid(table.epochs) if grid is None else grid
    horizon = min(horizon_fraction, 0.3) * table.total_cost  # the score looks at costs <= 25% only
    seeds = list(seeds)
    plans: list[tuple[str, dict[str, Any]]] = [("edgetune", dict(zip(grid, c))) for c in itertools.product(*grid.values())]
    for name, g in BASELINE_GRIDS.items():
        if name in strategies:
            plans += [(name, dict(zip(g, c))) for c in itertools.product(*g.values())]
    tasks = [(name, seed, replace(base, **knobs)) for name, knobs in plans for seed in seeds]
    runs = simulate_many(table, problem, tasks, horizon, jobs)
    tried: dict[str, list[dict[str, Any]]] = {}
    for i, (name, knobs) in enumerate(plans):
        score = _score(runs[i * len(seeds):(i + 1) * len(seeds)], problem, table)
        tried.setdefault(name, []).append({"settings": knobs, "score": score})
        print(f"tune {name} {knobs} -> {score}", file=sys.stderr, flush=True)
    chosen = base
    for name, cands in tried.items():
        chosen = replace(chosen, **max(cands, key=lambda t: t["score"])["settings"])
    info = {
        "seeds": seeds,
        "score": "mean HV fraction over [10%, 20%] of the grid cost, ties by mean HV fraction over [0, 25%]",
        "edgetune_candidates": tried["edgetune"],
        "nsga2_candidates": [{"nsga2_population_size": c["settings"]["nsga2_population_size"], "score": c["score"]}
                             for c in tried.get("nsga2", [])],
        "baseline_candidates": {k: v for k, v in tried.items() if k != "edgetune"},
        "chosen": asdict(chosen),
    }
    return chosen, info


# ---- outputs ---------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; a report is read by others, like any new file
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def table_info(table: Table) -> dict[str, Any]:
    info = {"source": table.source, "kind": table.kind, "sha256": table.sha256, "rows": len(table.df),
            "epochs": table.epochs, "grid": table.grid, "total_cost_gpu_seconds": table.total_cost,
            "test_wer": quartiles(table.df["test_wer"]) | {"min": float(table.df["test_wer"].min())}}
    if "parity_passed" in table.df.columns:
        info["parity_failed_rows"] = int((table.df["parity_passed"] == 0).sum())
    return info


def build_result(table: Table, problem: Problem, runs: dict[str, list[Run]], settings: Settings, seeds: list[int],
                 horizon_fraction: float, tuning: dict[str, Any] | None, argv: list[str], seconds: float) -> dict[str, Any]:
    """The result of one budget: curves, checkpoint statistics, attainment surfaces, the goal."""
    grid = np.round(np.linspace(0.0, horizon_fraction, 201), 6)
    costs = grid * table.total_cost
    curves = {}
    for s, rs in runs.items():
        f = fractions(rs, problem, costs)
        q25, med, q75 = np.percentile(f, [25, 50, 75], axis=0)
        # HV fractions to 1e-6 (keeps replay.json small; the checkpoint statistics keep full precision)
        curves[s] = {k: np.round(v, 6).tolist() for k, v in
                     (("median", med), ("q25", q25), ("q75", q75), ("per_seed", f))}
    cps = checkpoint_stats(runs, problem, table, checkpoints_for(horizon_fraction))
    goal = None
    if "edgetune" in runs and f"{GOAL_COST:g}" in cps:
        goal_cp = cps[f"{GOAL_COST:g}"]
        pv = {b: p for b, p in goal_cp.get("p_value_edgetune_greater", {}).items() if b in BASELINES}
        goal = {
            "rule": f"median HV fraction >= {GOAL_FRACTION} at {GOAL_COST:.0%} of the grid cost, and one-sided "
                    f"Mann-Whitney p < {GOAL_ALPHA} against every baseline there",
            "edgetune_median": goal_cp["edgetune"]["median"],
            "seeds_reaching_target": int(sum(v >= GOAL_FRACTION for v in goal_cp["edgetune"]["values"])),
            "p_values": pv,
            "baselines_not_run": [b for b in BASELINES if b not in runs],  # the goal says nothing about these
            "met": bool(goal_cp["edgetune"]["median"] >= GOAL_FRACTION and all(p < GOAL_ALPHA for p in pv.values())),
        }
    return {
        "schema": 1,
        "generated_by": "benchmarks/replay.py",
        "command": " ".join(argv),
        "wall_seconds": round(seconds, 1),
        "table": table_info(table),
        "problem": {
            "objectives": ["test_wer", "latency_ms"],
            "budgets": [f"{b.metric} {b.op} {b.bound!r}" for b in problem.budgets],
            "budget_note": problem.budget_note,
            "reference_point": {"test_wer": problem.reference[0], "latency_ms": problem.reference[1]},
            "reference_rule": problem.reference_rule,
            "n_feasible": problem.n_feasible,
            "n_parity_failed": problem.n_parity_failed,
            "true_hypervolume": problem.true_hv,
            "true_front": problem.true_front,
        },
        "strategies": {s: asdict(STRATEGY_SPECS[s]) for s in runs},
        "settings": asdict(settings),
        "tuning": tuning,
        "seeds": seeds,
        "horizon_fraction": horizon_fraction,
        "cost_fractions": grid.tolist(),
        "curves": curves,
        "checkpoints": cps,
        "attainment": eaf_stats(runs, problem, table, [c for c in EAF_CHECKPOINTS if c <= horizon_fraction + 1e-12]),
        "cost_to_reach_target": {s: cost_to_reach(rs, problem, table, GOAL_FRACTION) for s, rs in runs.items()},
        "runs": {s: [r.summary() for r in rs] for s, rs in runs.items()},
        "goal": goal,
    }


NOT_RUN = [
    "Resume of stopped trials: the product has none any more (run_study never resumes a MO-ASHA-stopped trial; "
    "a stopped configuration proposed again is trained again), so there is no resume to switch off.",
    "A median-style multi-objective pruner: OptunaHub's pruners/multi_metric_pruner is fetched from GitHub when "
    "optunahub.load_module runs (it is not on PyPI), and this machine cannot reach GitHub (git fetch: 'Could not "
    "resolve host: github.com'); Optuna 5's own pruners (MedianPruner, ...) refuse multi-objective studies "
    "(Trial.report raises NotImplementedError). Not replaced by a hand-written copy.",
]


def build_report(table: Table, per_budget: dict[str, dict[str, Any]], argv: list[str], seconds: float,
                 skipped: dict[str, str]) -> dict[str, Any]:
    """The whole report: one result per budget, and what was not run and why."""
    return {
        "schema": 2,
        "generated_by": "benchmarks/replay.py",
        "command": " ".join(argv),
        "wall_seconds": round(seconds, 1),
        "table": table_info(table),
        "budgets": per_budget,
        "not_run": NOT_RUN + [f"{s}: skipped, {why}" for s, why in skipped.items()],
        "goal_met_under_every_budget": bool(per_budget) and all(
            (r["goal"] or {}).get("met", False) for r in per_budget.values()),
    }


def write_outputs(report: dict[str, Any], out: Path) -> list[Path]:
    """``replay.json`` and ``replay.md`` (the whole report), and per budget ``replay-<name>.png``
    (HV fraction over cost) and ``eaf-<name>.png`` (attainment surfaces)."""
    from replay_render import render_curves_png, render_eaf_png, render_report_markdown

    paths = [out / "replay.json", out / "replay.md"]
    # compact: the per-seed curves are most of it (replay.md is the readable form)
    _write_atomic(paths[0], (json.dumps(report, separators=(",", ":")) + "\n").encode())
    _write_atomic(paths[1], render_report_markdown(report).encode())
    for name, res in report["budgets"].items():
        paths.append(out / f"replay-{name}.png")
        _write_atomic(paths[-1], render_curves_png(res))
        if res["attainment"]:
            paths.append(out / f"eaf-{name}.png")
            _write_atomic(paths[-1], render_eaf_png(res))
    return paths


# ---- command line ----------------------------------------------------------------------------


def _seeds(text: str) -> list[int]:
    try:
        if "-" in text:
            lo, hi = text.split("-")
            return list(range(int(lo), int(hi) + 1))
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are like 0-19 or 1,2,3, but got {text!r}") from None


def parse_latency_budgets(text: str, table: Table) -> dict[str, tuple[float, str]]:
    """``tight=p25,loose=p50`` (a percentile of the table's latency_ms) or ``name=495.7`` (ms) ->
    {name: (budget in ms, note)}."""
    out: dict[str, tuple[float, str]] = {}
    lat = table.df["latency_ms"].to_numpy(float)
    for item in (i.strip() for i in text.split(",") if i.strip()):
        name, sep, spec = item.partition("=")
        if not sep or not name.replace("-", "").isalnum() or name in out:
            raise ConfigError(f"--latency-budgets: each item is NAME=pNN or NAME=<ms> with a new name, but got {item!r}")
        try:
            if spec.startswith("p"):
                q = float(spec[1:])
                if not 0 <= q <= 100:
                    raise ValueError
                ms = float(np.percentile(lat, q))
                out[name] = (ms, f"(latency budget = the {q:g}th percentile of the table's latency_ms, {ms:.1f} ms)")
            else:
                out[name] = (float(spec), "(given on the command line)")
        except ValueError:
            raise ConfigError(f"--latency-budgets: {item!r}: the value is pNN (0 <= NN <= 100) or a latency in ms") from None
    if not out:
        raise ConfigError("--latency-budgets: give at least one NAME=SPEC, e.g. tight=p25,loose=p50")
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--table", type=Path, help="measured table (CSV, schema in benchmarks/tables/README.md)")
    src.add_argument("--synthetic", nargs="?", const="late", choices=("late", "early"),
                     help="use a SYNTHETIC table (development only): pruning/QAT late in training as the "
                          "default TrainSettings (late), or from the first epochs (early)")
    ap.add_argument("--out", type=Path, help="output folder (default reports/replay, or runs/replay-synthetic)")
    ap.add_argument("--latency-budgets", default="tight=p25,loose=p50",
                    help="the latency budgets, each replayed in full: NAME=pNN (a percentile of the table's "
                         "latency_ms) or NAME=<ms> (default tight=p25,loose=p50)")
    ap.add_argument("--latency-budget-ms", type=float, help="one latency budget in ms (replaces --latency-budgets)")
    ap.add_argument("--size-budget-bytes", type=float, help="size budget, under every latency budget (default: none)")
    ap.add_argument("--wer-ref", type=float, help="reference point's test_wer (default: 1.1 x the worst feasible)")
    ap.add_argument("--seeds", type=_seeds, default=list(range(20)), help="reported seeds (default 0-19)")
    ap.add_argument("--tune", action="store_true", help="tune the knobs on --tune-seeds first, per budget")
    ap.add_argument("--tune-seeds", type=_seeds, default=list(range(100, 110)), help="tuning seeds (default 100-109)")
    ap.add_argument("--horizon", type=float, default=0.5, help="stop each run at this share of the grid cost (default 0.5)")
    ap.add_argument("--strategies", help=f"comma list out of {','.join(STRATEGIES)} (default: all whose "
                                         "dependencies are installed)")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default 1; results do not change)")
    ap.add_argument("--sampler", choices=("nsga2", "tpe"), help="edgetune's sampler (default nsga2)")
    for f in ("population_size", "eta", "min_epochs", "min_peers", "nsga2_population_size", "syne_grace_period",
              "syne_reduction_factor", "workers", "n_trials_per_config"):
        ap.add_argument(f"--{f.replace('_', '-')}", type=int, help=f"set {f} (default {getattr(Settings(), f)})")
    return ap.parse_args(argv)


SETTING_FLAGS = ("sampler", "population_size", "eta", "min_epochs", "min_peers", "nsga2_population_size",
                 "syne_grace_period", "syne_reduction_factor", "workers", "n_trials_per_config")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    t0 = time.monotonic()
    if args.synthetic:
        sched = {"late": {"prune_at": 0.4, "qat_fraction": 0.4}, "early": {"prune_at": 0.1, "qat_fraction": 0.9}}
        kw = sched[args.synthetic]
        table = validate_table(synthetic_table(**kw), f"synthetic_table(seed=0, {kw})", kind="synthetic")
        out = args.out or REPO / "runs" / "replay-synthetic"
        if (REPO / "reports" / "replay").resolve() in [out.resolve(), *out.resolve().parents]:
            raise ConfigError(f"--out {out}: results of a SYNTHETIC table never go under reports/replay. Fix: --out runs/...")
    else:
        table = load_table(args.table)
        out = args.out or REPO / "reports" / "replay"
    skipped: dict[str, str] = {}
    if args.strategies is None:
        strategies = list(available_strategies())
        skipped = {s: f"not installed. Fix: {OPTIONAL_STRATEGIES[s][1]}" for s in STRATEGIES if s not in strategies}
    else:
        strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ConfigError(f"--strategies: unknown {unknown}; valid strategies are {', '.join(STRATEGIES)}")
    missing = [s for s in strategies if s in OPTIONAL_STRATEGIES and not OPTIONAL_STRATEGIES[s][0]()]
    if missing:
        raise ConfigError(f"--strategies {','.join(missing)}: not installed. Fix: "
                          f"{'; '.join(OPTIONAL_STRATEGIES[s][1] for s in missing)}")
    if args.tune and set(args.seeds) & set(args.tune_seeds):
        raise ConfigError(f"--seeds and --tune-seeds overlap ({sorted(set(args.seeds) & set(args.tune_seeds))}); "
                          "tuning on reported seeds would flatter the result. Fix: disjoint seed sets")
    if not 0 < args.horizon <= 5:
        raise ConfigError(f"--horizon must be in (0, 5] (a share of the grid cost), but got {args.horizon}")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, but got {args.jobs}")
    if args.latency_budget_ms is not None:
        budgets = {"given": (args.latency_budget_ms, "(given on the command line)")}
    else:
        budgets = parse_latency_budgets(args.latency_budgets, table)
    given = {f: getattr(args, f) for f in SETTING_FLAGS if getattr(args, f) is not None}
    per_budget = {}
    for name, (lat, note) in budgets.items():
        t1 = time.monotonic()
        problem = make_problem(table, make_budgets(max_latency_ms=lat, max_size_bytes=args.size_budget_bytes), note,
                               args.wer_ref)
        settings, tuning = replace(Settings(), **given), None
        if args.tune:
            settings, tuning = tune(table, problem, args.tune_seeds, settings, args.horizon, strategies=strategies,
                                    jobs=args.jobs)
            print(f"budget {name}: tuned on seeds {args.tune_seeds}: {settings}", file=sys.stderr)
        runs = run_all(table, problem, args.seeds, settings, args.horizon, strategies, jobs=args.jobs)
        per_budget[name] = build_result(table, problem, runs, settings, args.seeds, args.horizon, tuning,
                                        ["benchmarks/replay.py", *argv], time.monotonic() - t1)
        print(f"budget {name} done in {time.monotonic() - t1:.0f} s", file=sys.stderr, flush=True)
    report = build_report(table, per_budget, ["benchmarks/replay.py", *argv], time.monotonic() - t0, skipped)
    for p in write_outputs(report, Path(out)):
        print(p)
    from replay_render import render_report_markdown

    print(render_report_markdown(report))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
