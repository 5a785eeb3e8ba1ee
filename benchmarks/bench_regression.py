"""How reliable is ``edgetune check`` on this host? A/A spread, detection rate, false alarms.

One bounded run (about 5 minutes on 2 cores), all through the real harness (runner
subprocesses, real ONNX Runtime sessions, ``target="local"``):

1. Calibrate a genuinely ~10% slower model: the same toy streaming architecture slightly
   wider (widths kept multiples of 8 so kernel tails do not distort). The slowdown is measured
   in one process, alternating the two sessions in short blocks so drift cancels; the
   candidate closest to +10% is kept and its measured true slowdown reported.
2. **separate** mode, as with a stored baseline (``check --baseline main.json`` from an earlier
   job): N single-round ``bench_model`` runs of the base (A) and slower (B) model, alternating.
   A/A coefficient of variation of p50 and p90 over the N base runs. Detection rate = share of
   (A, B) pairs that check's rule flags; false-alarm rate = share of (A, A') pairs flagged.
   Over all pairs (more resolution, not independent) and adjacent pairs (independent).
3. **interleaved** mode, as in the CI example (``bench new.onnx --baseline-model main.onnx``):
   J jobs of ``bench_models([A, B], rounds=R)`` and J of ``bench_models([A, A], rounds=R)``
   (block interleaving in one runner process, paired block bootstrap); each job is one
   comparison.

Rates are given per statistic (p50, p90, either) for a sweep of noise floors. Writes
``benchmarks/results/regression-<host>.json``. Goals: A/A CV <= 3%, detection >= 95%,
false alarms <= 5%; ``goals_met`` says which were met (for the default rule of check).

    PYTHONPATH=. python benchmarks/bench_regression.py [--n 16] [--jobs 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgetune.bench import (DEFAULT_NOISE_FLOOR_PCT, DEFAULT_REGRESSION_ON, StreamingModel, bench_model, bench_models,
                            bootstrap_relative_diff, default_block, verdict)
from edgetune.bench.testing import make_streaming_model

BASE = {"width": 384, "depth": 4}
WIDTH_CANDIDATES = (392, 400, 408)  # hidden-layer FLOPs +4%, +8.5%, +13%
FLOORS = (0.0, 2.0, 3.0, 5.0, 10.0)
STATS = ("p50", "p90")


def interleaved_ratio(base: Path, cand: Path, blocks: int = 60, steps: int = 50) -> float:
    """Median over blocks of median(cand step) / median(base step), both sessions in one process."""
    a, b = StreamingModel(str(base)), StreamingModel(str(cand))
    x = np.random.default_rng(0).standard_normal((a.chunk_frames, a.n_mels)).astype(np.float32)
    for m in (a, b):
        for _ in range(20):
            m.step(x)
    ratios = []
    for _ in range(blocks):
        med = []
        for m in (a, b):
            s = []
            for _ in range(steps):
                t = time.perf_counter_ns()
                m.step(x)
                s.append(time.perf_counter_ns() - t)
            med.append(np.median(s))
        ratios.append(med[1] / med[0])
    return float(np.median(ratios))


def rates(pairs: list[tuple[list[float], list[float]]], paired: bool, floors=FLOORS) -> dict:
    """For each floor: the share of pairs flagged as a regression on p50, on p90, and on either."""
    comparisons = []
    for a, b in pairs:
        block = 20 if paired else default_block(min(len(a), len(b)))
        comparisons.append({s: bootstrap_relative_diff(a, b, s, n_boot=1000, block=block, paired=paired)
                            for s in STATS})
    out = {}
    for floor in floors:
        flags = [{s: verdict(c[s], floor) == "regression" for s in STATS} for c in comparisons]
        row = {s: float(np.mean([f[s] for f in flags])) for s in STATS}
        row["either"] = float(np.mean([any(f.values()) for f in flags]))
        out[f"{floor:g}"] = row
    return out


def default_rule(table: dict) -> float:
    """The rate under check's defaults (DEFAULT_REGRESSION_ON at DEFAULT_NOISE_FLOOR_PCT)."""
    row = table[f"{DEFAULT_NOISE_FLOOR_PCT:g}"]
    return row["either"] if len(DEFAULT_REGRESSION_ON) > 1 else row[DEFAULT_REGRESSION_ON[0]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=16, help="separate bench runs per model (default 16)")
    ap.add_argument("--jobs", type=int, default=20, help="interleaved jobs per kind, A/B and A/A (default 20)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per interleaved job (default 3)")
    ap.add_argument("--runs", type=int, default=300, help="timed chunk steps per runner process (default 300)")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    t_start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="edgetune-bench-regression."))
    try:
        result = run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["seconds"] = time.monotonic() - t_start
    host = re.sub(r"[^A-Za-z0-9._-]+", "-", platform.node() or "host")
    out = Path(args.out or Path(__file__).parent / "results" / f"regression-{host}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".tmp")
    tmp_out.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp_out, out)
    summary = {k: result[k] for k in ("true_slowdown_pct", "aa_cv_pct", "goals_met", "seconds")}
    print(json.dumps(summary, indent=1))
    for mode in ("separate", "interleaved"):
        print(f"{mode}: detection {result[mode]['detection_rate']}\n{mode}: false alarms "
              f"{result[mode]['false_alarm_rate']}")
    print(f"wrote {out}")
    return 0


def run(args, tmp: Path) -> dict:
    base = make_streaming_model(tmp / "base.onnx", **BASE)

    # 1. calibrate a ~10% slower model
    calibration = {}
    for width in WIDTH_CANDIDATES:
        cand = make_streaming_model(tmp / f"w{width}.onnx", width=width, depth=BASE["depth"])
        calibration[width] = interleaved_ratio(base, cand)
        print(f"calibration: width {width}: {100 * (calibration[width] - 1):+.1f}%", flush=True)
    slow_width = min(calibration, key=lambda w: abs(calibration[w] - 1.10))
    slow = tmp / f"w{slow_width}.onnx"

    # 2. separate runs, alternating A and B
    a_runs, b_runs, fingerprint = [], [], None
    for i in range(args.n):
        for model, bucket in ((base, a_runs), (slow, b_runs)):
            r = bench_model(model, "local", runs=args.runs, warmup=args.warmup)
            bucket.append(r["samples_ms"])
            fingerprint = r["fingerprint"]
        print(f"separate {i + 1}/{args.n}: A p50 {np.median(a_runs[-1]):.3f} ms, "
              f"B p50 {np.median(b_runs[-1]):.3f} ms", flush=True)

    def cv(q: float, runs: list[list[float]]) -> float:
        v = np.array([np.percentile(s, q) for s in runs])
        return float(100 * v.std(ddof=1) / v.mean())

    all_ab = [(a, b) for a in a_runs for b in b_runs]
    all_aa = [(a_runs[i], a_runs[j]) for i, j in itertools.combinations(range(args.n), 2)]
    separate = {
        "runs_per_model": args.n,
        "slowdown_pct_median_of_adjacent_ratios": float(100 * (np.median(
            [np.median(b) / np.median(a) for a, b in zip(a_runs, b_runs)]) - 1)),
        "detection_rate": rates(all_ab, paired=False),
        "false_alarm_rate": rates(all_aa, paired=False),
        "detection_rate_adjacent_pairs": rates(list(zip(a_runs, b_runs)), paired=False),
        "false_alarm_rate_adjacent_pairs": rates(list(zip(a_runs[:-1], a_runs[1:])), paired=False),
        "pairs": {"all_ab": len(all_ab), "all_aa": len(all_aa), "adjacent_ab": args.n, "adjacent_aa": args.n - 1},
        "a_p50_ms": [float(np.median(s)) for s in a_runs], "b_p50_ms": [float(np.median(s)) for s in b_runs],
    }

    # 3. interleaved jobs (block mode, paired)
    inter_ab, inter_aa, pooled_a_p50 = [], [], []
    for j in range(args.jobs):
        ra, rb = bench_models([base, slow], "local", rounds=args.rounds, runs=args.runs, warmup=args.warmup)
        r1, r2 = bench_models([base, base], "local", rounds=args.rounds, runs=args.runs, warmup=args.warmup)
        inter_ab.append((ra["samples_ms"], rb["samples_ms"]))
        inter_aa.append((r1["samples_ms"], r2["samples_ms"]))
        pooled_a_p50 += [ra["latency_ms"]["p50"], r1["latency_ms"]["p50"]]
        print(f"interleaved {j + 1}/{args.jobs}: B/A p50 {rb['latency_ms']['p50'] / ra['latency_ms']['p50']:.3f}, "
              f"A'/A p50 {r2['latency_ms']['p50'] / r1['latency_ms']['p50']:.3f}", flush=True)
    v = np.array(pooled_a_p50)
    interleaved = {
        "jobs": args.jobs, "rounds": args.rounds, "block": 20,
        "slowdown_pct_median_of_jobs": float(100 * (np.median([np.median(b) / np.median(a)
                                                                for a, b in inter_ab]) - 1)),
        "aa_ratio_p50_of_jobs": [float(np.median(b) / np.median(a)) for a, b in inter_aa],
        "cv_pct_p50_of_pooled_base_results": float(100 * v.std(ddof=1) / v.mean()),
        "detection_rate": rates(inter_ab, paired=True),
        "false_alarm_rate": rates(inter_aa, paired=True),
    }
    return {
        "benchmark": "bench_regression", "host": platform.node(), "fingerprint": fingerprint,
        "settings": {"runs": args.runs, "warmup": args.warmup, "base_model": BASE,
                     "slow_model": {"width": slow_width, "depth": BASE["depth"]},
                     "rule": {"regression_on": list(DEFAULT_REGRESSION_ON), "confidence": 0.95,
                              "default_noise_floor_pct": DEFAULT_NOISE_FLOOR_PCT, "bootstrap_resamples": 1000}},
        "calibration_in_process_slowdown_pct": {str(w): 100 * (r - 1) for w, r in calibration.items()},
        "true_slowdown_pct": {"in_process_block_interleaved": 100 * (calibration[slow_width] - 1),
                              "separate_runs": separate["slowdown_pct_median_of_adjacent_ratios"],
                              "interleaved_jobs": interleaved["slowdown_pct_median_of_jobs"]},
        "aa_cv_pct": {"p50": cv(50, a_runs), "p90": cv(90, a_runs)},
        "separate": separate, "interleaved": interleaved,
        "goals_met": {
            "aa_cv_p50_le_3pct": cv(50, a_runs) <= 3.0, "aa_cv_p90_le_3pct": cv(90, a_runs) <= 3.0,
            "separate_detection_ge_95pct": default_rule(separate["detection_rate"]) >= 0.95,
            "separate_false_alarms_le_5pct": default_rule(separate["false_alarm_rate"]) <= 0.05,
            "interleaved_detection_ge_95pct": default_rule(interleaved["detection_rate"]) >= 0.95,
            "interleaved_false_alarms_le_5pct": default_rule(interleaved["false_alarm_rate"]) <= 0.05,
        },
    }


if __name__ == "__main__":
    sys.exit(main())
