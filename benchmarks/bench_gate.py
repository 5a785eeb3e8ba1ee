"""Replay recorded bench rounds through ``edgetune check``'s run-level gates; detection and false alarms.

Input: ``benchmarks/results/gate-history*-<host>.json`` from ``record_gate_history.py`` (real
rounds of a base model A and a ~10% slower model B, alternating on this host, with or without
the host-speed reference). Results are built from consecutive rounds of one model and passed
to the product's own ``check_stored_baseline`` and ``check_history`` (no copy of the rule):

* **stored baseline**: a baseline of ``--base-runs`` A rounds against a candidate of
  ``--runs`` rounds from a disjoint stretch of time, A (false alarm if flagged) or B
  (detection). Every (baseline window, candidate window) pair that does not overlap in time.
* **history**: ``--trials`` replayed main-branch histories of ``--history`` results, each a
  random time-ordered draw of disjoint A windows; the new result is a later A window (false
  alarm) or a B window (detection). Shifted histories (the last results already B) check that
  a change point resets the regime: a new B result must then pass.

For each mode: A/A CV (per run and per result), verdict shares, and the rates at a sweep of
minimum effects. ``goals_met`` uses check's defaults. Writes ``benchmarks/results/gate-<host>.json``.

    PYTHONPATH=. python benchmarks/bench_gate.py [--history-file F] [--runs 5] [--base-runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

from edgetune.bench._check import (DEFAULT_DETECT_PCT, DEFAULT_MIN_EFFECT_PCT, Results, check_history,
                                   check_stored_baseline)

MIN_EFFECTS = (3.0, 4.0, 5.0, 6.0, 7.0)


def load_recording(path: str) -> dict:
    """A recording of record_gate_history.py; samples stored as integers of ``sample_unit_ms``
    (a compact form of long recordings) come back as milliseconds."""
    rec = json.loads(Path(path).read_text())
    unit = rec.get("sample_unit_ms")
    if unit:
        for r in rec["rounds"]:
            for key in ("samples_ms", "reference_samples_ms"):
                if key in r:
                    r[key] = [v * unit for v in r[key]]
    return rec


def as_results(rounds: list[dict], name: str, normalized: bool) -> Results:
    """A bench result of several rounds, as `edgetune bench --rounds N [--reference]` writes it."""
    bench = {"latency_ms": {}, "rounds": len(rounds), "target": "local",
             "samples_ms": [s for r in rounds for s in r["samples_ms"]],
             "created": f"{rounds[0]['start']:014.3f}"}
    if normalized:
        bench["reference"] = {"samples_ms": [s for r in rounds for s in r["reference_samples_ms"]]}
    return Results(name, "local", bench, None, None)


def windows(rounds: list[dict], k: int) -> list[tuple[int, list[dict]]]:
    """Disjoint windows of k consecutive rounds: (index of the first round, rounds)."""
    return [(i, rounds[i:i + k]) for i in range(0, len(rounds) - k + 1, k)]


def verdicts(outcomes) -> list[str]:
    return [o.details["verdict"] for o in outcomes]


def share(vs: list[str], what: str) -> float:
    return float(np.mean([v == what for v in vs])) if vs else float("nan")


def stored_baseline(a, b, args, normalized: bool) -> dict:
    base_w, cand_a, cand_b = windows(a, args.base_runs), windows(a, args.runs), windows(b, args.runs)
    out = {"base_runs": args.base_runs, "runs": args.runs, "by_min_effect": {}}
    for me in MIN_EFFECTS:
        budget = {"min_effect_pct": me, "bootstrap_resamples": 500}
        aa, ab = [], []
        for i, bw in base_w:
            base = as_results(bw, f"base{i}", normalized)
            span = range(i, i + args.base_runs)
            for j, cw in cand_a:
                if j not in span and j + args.runs - 1 not in span:
                    aa += verdicts(check_stored_baseline(as_results(cw, f"a{j}", normalized), [base], budget))
            for j, cw in cand_b:
                if j not in span and j + args.runs - 1 not in span:
                    ab += verdicts(check_stored_baseline(as_results(cw, f"b{j}", normalized), [base], budget))
        out["by_min_effect"][f"{me:g}"] = {
            "detection_rate": share(ab, "regression"), "false_alarm_rate": share(aa, "regression"),
            "noisy_rate_ab": share(ab, "noisy"), "noisy_rate_aa": share(aa, "noisy"),
            "pairs_ab": len(ab), "pairs_aa": len(aa)}
    return out


def history_mode(a, b, args, normalized: bool, rng) -> dict:
    wa, wb = windows(a, args.runs), windows(b, args.runs)
    out = {"history": args.history, "runs": args.runs, "trials": args.trials, "by_min_effect": {}}
    for me in MIN_EFFECTS:
        budget = {"min_effect_pct": me}
        aa, ab, shifted_b, cp_found, cp_false = [], [], [], [], []
        for _ in range(args.trials):
            picks = np.sort(rng.choice(len(wa) - 1, args.history, replace=False))
            hist = [as_results(wa[p][1], f"h{p}", normalized) for p in picks]
            later = [p for p in range(picks[-1] + 1, len(wa))] or [len(wa) - 1]
            new_a = as_results(wa[rng.choice(later)][1], "newA", normalized)
            new_b = as_results(wb[rng.integers(len(wb))][1], "newB", normalized)
            o = check_history(new_a, hist, budget)
            aa += verdicts(o)
            cp_false.append(bool(o[0].details["change_points"]))
            ab += verdicts(check_history(new_b, hist, budget))
            # shifted: the last `shift` results are already B, so a new B result is the regime
            shift = args.history // 2
            bpicks = np.sort(rng.choice(len(wb), shift + 1, replace=False))
            shist = hist[:args.history - shift] + [as_results(wb[p][1], f"s{p}", normalized) for p in bpicks[:-1]]
            o = check_history(as_results(wb[bpicks[-1]][1], "newB", normalized), shist, budget)
            shifted_b += verdicts(o)
            cp_found.append(args.history - shift in o[0].details["change_points"])
        out["by_min_effect"][f"{me:g}"] = {
            "detection_rate": share(ab, "regression"), "false_alarm_rate": share(aa, "regression"),
            "noisy_rate_ab": share(ab, "noisy"), "noisy_rate_aa": share(aa, "noisy"),
            "shifted_history_new_b_flagged_rate": share(shifted_b, "regression"),
            "change_point_found_at_shift_rate": float(np.mean(cp_found)),
            "change_point_in_aa_history_rate": float(np.mean(cp_false))}
    return out


def cvs(rounds: list[dict], k: int, normalized: bool) -> dict:
    per_run = np.array(as_results(rounds, "x", normalized).run_values("p50", normalized))
    per_result = np.array([np.median(per_run[i:i + k]) for i in range(0, len(per_run) - k + 1, k)])
    cv = lambda v: float(100 * v.std(ddof=1) / v.mean())  # noqa: E731
    return {"per_run_pct": cv(per_run), f"per_result_of_{k}_runs_pct": cv(per_result)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    host = re.sub(r"[^A-Za-z0-9._-]+", "-", platform.node() or "host")
    here = Path(__file__).parent / "results"
    ap.add_argument("--history-file", default=str(here / f"gate-history-{host}.json"))
    ap.add_argument("--raw-history-file", default=str(here / f"gate-history-raw-{host}.json"))
    ap.add_argument("--runs", type=int, default=5, help="runs (bench rounds) per candidate result (default 5)")
    ap.add_argument("--base-runs", type=int, default=10, help="runs in the stored baseline (default 10)")
    ap.add_argument("--history", type=int, default=12, help="results per replayed history (default 12)")
    ap.add_argument("--trials", type=int, default=200, help="replayed histories per kind (default 200)")
    ap.add_argument("--out", default=str(here / f"gate-{host}.json"))
    args = ap.parse_args()
    t0 = time.monotonic()
    rng = np.random.default_rng(0)
    result = {"benchmark": "bench_gate", "host": platform.node(),
              "command": "PYTHONPATH=. python benchmarks/bench_gate.py " + " ".join(sys.argv[1:]),
              "defaults": {"min_effect_pct": DEFAULT_MIN_EFFECT_PCT, "detect_pct": DEFAULT_DETECT_PCT,
                           "confidence": 0.95, "regression_on": ["p50"]}, "modes": {}}
    sources = [("normalized", args.history_file, True), ("raw_same_recording", args.history_file, False),
               ("raw", args.raw_history_file, False)]
    for name, path, normalized in sources:
        if not Path(path).exists():
            continue
        rec = load_recording(path)
        a = [r for r in rec["rounds"] if r["model"] == "A"]
        b = [r for r in rec["rounds"] if r["model"] == "B"]
        print(f"{name}: {len(a)} + {len(b)} rounds from {path}", flush=True)
        result["modes"][name] = {
            "recording": Path(path).name, "recorded_slowdown_pct_in_process": rec["true_slowdown_pct"],
            "fingerprint": rec["fingerprint"], "aa_cv": cvs(a, args.runs, normalized),
            "slowdown_pct_median_runs": float(100 * (np.median(as_results(b, "b", normalized).run_values(
                "p50", normalized)) / np.median(as_results(a, "a", normalized).run_values("p50", normalized)) - 1)),
            "stored_baseline": stored_baseline(a, b, args, normalized),
            "history": history_mode(a, b, args, normalized, rng)}
    d = f"{DEFAULT_MIN_EFFECT_PCT:g}"
    goals = {}
    for name, m in result["modes"].items():
        sb, hi = m["stored_baseline"]["by_min_effect"][d], m["history"]["by_min_effect"][d]
        goals[name] = {"aa_cv_per_result_le_3pct": m["aa_cv"][f"per_result_of_{args.runs}_runs_pct"] <= 3.0,
                       "stored_detection_ge_95pct": sb["detection_rate"] >= 0.95,
                       "stored_false_alarms_le_5pct": sb["false_alarm_rate"] <= 0.05,
                       "history_detection_ge_95pct": hi["detection_rate"] >= 0.95,
                       "history_false_alarms_le_5pct": hi["false_alarm_rate"] <= 0.05}
    result["goals_met_at_defaults"] = goals
    result["seconds"] = time.monotonic() - t0
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, out)
    for name, m in result["modes"].items():
        sb, hi = m["stored_baseline"]["by_min_effect"][d], m["history"]["by_min_effect"][d]
        print(f"{name}: A/A CV {m['aa_cv']}; stored det {sb['detection_rate']:.3f} fa {sb['false_alarm_rate']:.3f} "
              f"noisy {sb['noisy_rate_aa']:.2f}; history det {hi['detection_rate']:.3f} fa "
              f"{hi['false_alarm_rate']:.3f} noisy {hi['noisy_rate_aa']:.2f}")
    print(json.dumps(goals, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
