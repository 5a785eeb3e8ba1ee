"""Record an A/A + A/B history of single bench rounds, for calibrating ``edgetune check``.

Each round is one ``bench_model(..., rounds=1)`` call through the real harness (a fresh
runner process and ONNX Runtime session, ``target="local"``), alternating the base model (A)
and a ~10% slower model (B, the same toy architecture slightly wider, calibrated in one
process as in ``bench_regression.py``). ``benchmarks/bench_gate.py`` then builds stored
baselines, candidates and main-branch histories out of these rounds and replays them
through ``edgetune check``'s own functions, so the gate is calibrated on what this host does
between separate runs, not on a model of it.

Writes ``benchmarks/results/gate-history-<host>.json``: settings, fingerprint, the measured
slowdown, and per round the model, start time and samples (ms, 4 decimals).

    PYTHONPATH=. python benchmarks/record_gate_history.py [--rounds 80] [--runs 300] [--reference]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from statistics import median
from pathlib import Path

from bench_regression import BASE, WIDTH_CANDIDATES, interleaved_ratio

from edgetune.bench import REFERENCE, bench_model, bench_models, reference_model
from edgetune.bench.testing import make_streaming_model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=80, help="rounds per model (default 80)")
    ap.add_argument("--runs", type=int, default=300, help="timed chunk steps per round (default 300)")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--reference", action="store_true",
                    help="time each round beside the host-speed reference (bench --reference), in one process")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="edgetune-gate-history."))
    try:
        base = make_streaming_model(tmp / "base.onnx", **BASE)
        calibration = {}
        for width in WIDTH_CANDIDATES:
            cand = make_streaming_model(tmp / f"w{width}.onnx", width=width, depth=BASE["depth"])
            calibration[width] = 100 * (interleaved_ratio(base, cand) - 1)
            print(f"calibration: width {width}: {calibration[width]:+.1f}%", flush=True)
        slow_width = min(calibration, key=lambda w: abs(calibration[w] - 10.0))
        slow = tmp / f"w{slow_width}.onnx"
        rounds, fingerprint = [], None
        for i in range(args.rounds):
            for name, model in (("A", base), ("B", slow)):
                start = time.time()
                if args.reference:
                    r, ref = bench_models([model, reference_model(tmp)], "local", rounds=1, block=20,
                                          runs=args.runs, warmup=args.warmup)
                else:
                    r, ref = bench_model(model, "local", runs=args.runs, warmup=args.warmup), None
                fingerprint = r["fingerprint"]
                rounds.append({"model": name, "start": round(start, 3),
                               "samples_ms": [round(s, 4) for s in r["samples_ms"]]})
                if ref:
                    rounds[-1]["reference_samples_ms"] = [round(s, 4) for s in ref["samples_ms"]]
            print(f"round {i + 1}/{args.rounds}: A p50 {median(rounds[-2]['samples_ms']):.3f} ms, "
                  f"B p50 {median(rounds[-1]['samples_ms']):.3f} ms", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "benchmark": "record_gate_history", "host": platform.node(), "fingerprint": fingerprint,
        "command": "PYTHONPATH=. python benchmarks/record_gate_history.py " + " ".join(sys.argv[1:]),
        "settings": {"runs": args.runs, "warmup": args.warmup, "rounds_per_model": args.rounds,
                     "base_model": BASE, "slow_model": {"width": slow_width, "depth": BASE["depth"]},
                     "reference": REFERENCE if args.reference else None, "block": 20 if args.reference else None},
        "calibration_in_process_slowdown_pct": {str(w): v for w, v in calibration.items()},
        "true_slowdown_pct": calibration[slow_width],
        "seconds": time.monotonic() - t0,
        "rounds": rounds,
    }
    host = re.sub(r"[^A-Za-z0-9._-]+", "-", platform.node() or "host")
    kind = "" if args.reference else "raw-"
    out = Path(args.out or Path(__file__).parent / "results" / f"gate-history-{kind}{host}.json")
    tmp_out = out.with_name(out.name + ".tmp")
    tmp_out.write_text(json.dumps(result) + "\n")
    os.replace(tmp_out, out)
    print(f"{len(rounds)} rounds in {result['seconds']:.0f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
