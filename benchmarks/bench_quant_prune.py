"""What do quantization and pruning buy in ONNX Runtime on this host? Latency ratios per chunk.

For one architecture at a time (conformer_lite, chunk 320 ms), exports the same untrained
candidate as float32, float16, int8 (QDQ, 7-bit weights, uint8 activations), int4 (INT4
weights) and 50 %-pruned float32 / int8 through the real exporter, then times one chunk step
of all of them in the same harness run (``edgetune.bench.bench_models``: one runner process
per round, models alternated every block of steps so drift hits all alike), 1 thread.
Latency depends on the architecture, not the trained weights, so untrained models suffice.

Writes ``benchmarks/results/quant_prune-<host>.json`` with, per architecture, the p50/p90 per
model, the ratios int8/fp32, int4/fp32, fp16/fp32, pruned50/unpruned (fp32 and int8), file
sizes, and the max |logit| difference of each file against float32 on the same input.

    PYTHONPATH=. python benchmarks/bench_quant_prune.py [--runs 300] [--rounds 3] [--arch base wide]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgetune.bench import StreamingModel, bench_models, device_fingerprint
from edgetune.knobs import Knobs
from edgetune.pipeline import export_untrained

ROOT = Path(__file__).resolve().parents[1]

ARCHS = {
    "base": {},                                      # the smoke default: d_model 96, 2 layers
    "wide": {"d_model": 256, "n_layers": 6},         # a GPU-study-sized model
}
VARIANTS = {
    "fp32": Knobs(bits=32),
    "fp16": Knobs(bits=16),
    "int8": Knobs(bits=8),
    "int4": Knobs(bits=4),
    "fp32_pruned50": Knobs(bits=32, sparsity=0.5),
    "int8_pruned50": Knobs(bits=8, sparsity=0.5),
}


def host_name() -> str:
    cpu = device_fingerprint().get("cpu_model") or platform.processor() or "cpu"
    name = platform.node() or cpu
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "host"


def logit_diffs(paths: dict[str, Path], seed: int = 0) -> dict[str, float]:
    """Max |logit - float32 logit| of each file over the same 3 s of random features."""
    ref = StreamingModel(str(paths["fp32"]))
    x = np.random.default_rng(seed).standard_normal((300, ref.n_mels)).astype(np.float32)
    base = ref.run_utterance(x)
    out = {}
    for name in ("fp16", "int8", "int4"):
        out[name] = float(np.abs(StreamingModel(str(paths[name])).run_utterance(x) - base).max())
    return out


def bench_arch(name: str, overrides: dict, folder: Path, runs: int, warmup: int, rounds: int) -> dict:
    paths = {}
    for variant, knobs in VARIANTS.items():
        path = folder / f"{name}-{variant}.onnx"
        export_untrained(knobs, path, model_config=overrides)
        paths[variant] = path
    t0 = time.time()
    results = bench_models([str(p) for p in paths.values()], "local", rounds=rounds, threads=1, runs=runs,
                           warmup=warmup)
    seconds = time.time() - t0
    per = {v: {"p50_ms": r["latency_ms"]["p50"], "p90_ms": r["latency_ms"]["p90"],
               "mean_ms": r["latency_ms"]["mean"], "size_bytes": paths[v].stat().st_size,
               "round_p50_ms": r.get("round_p50_ms")}
           for v, r in zip(paths, results)}

    def ratio(a: str, b: str, stat: str = "p50_ms") -> float:
        return per[a][stat] / per[b][stat]

    meta = json.loads(StreamingModel(str(paths["fp32"])).session.get_modelmeta().custom_metadata_map["edgetune"])
    return {
        "architecture": {"overrides": overrides, "model_config": meta["model_config"], "chunk_ms": meta["chunk_ms"]},
        "models": per,
        "ratios_p50": {
            "int8/fp32": ratio("int8", "fp32"),
            "int4/fp32": ratio("int4", "fp32"),
            "fp16/fp32": ratio("fp16", "fp32"),
            "pruned50/unpruned (fp32)": ratio("fp32_pruned50", "fp32"),
            "pruned50/unpruned (int8)": ratio("int8_pruned50", "int8"),
        },
        "ratios_p90": {
            "int8/fp32": ratio("int8", "fp32", "p90_ms"),
            "int4/fp32": ratio("int4", "fp32", "p90_ms"),
            "fp16/fp32": ratio("fp16", "fp32", "p90_ms"),
            "pruned50/unpruned (fp32)": ratio("fp32_pruned50", "fp32", "p90_ms"),
        },
        "size_ratios": {
            "fp32/int8": per["fp32"]["size_bytes"] / per["int8"]["size_bytes"],
            "int8/int4": per["int8"]["size_bytes"] / per["int4"]["size_bytes"],
            "fp32/fp16": per["fp32"]["size_bytes"] / per["fp16"]["size_bytes"],
        },
        "max_abs_logit_diff_vs_fp32": logit_diffs(paths),
        "bench_seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    ap.add_argument("--runs", type=int, default=300, help="timed chunk steps per model per round")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None, help="results file (default benchmarks/results/quant_prune-<host>.json)")
    args = ap.parse_args(argv)

    import onnxruntime

    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"quant_prune-{host_name()}.json"
    report = {
        "what": "ORT CPU latency of one chunk step (1 thread), same architecture at each bit width / sparsity",
        "host": {"name": platform.node(), "fingerprint": device_fingerprint(), "ort_version": onnxruntime.__version__,
                 "load_average": os.getloadavg()},
        "settings": {"runs": args.runs, "warmup": args.warmup, "rounds": args.rounds, "threads": 1,
                     "harness": "edgetune.bench.bench_models (block-interleaved, python runner)"},
        "fp16_method": ("export float32, then convert every float initializer/constant to float16 and cast the "
                        "float32 graph inputs/outputs at the edges (edgetune.export._passes.convert_fp16); all "
                        "ops, LayerNormalization included, have float16 CPU kernels in this ONNX Runtime"),
        "architectures": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.arch:
            print(f"[{name}] exporting and timing {len(VARIANTS)} variants ...", flush=True)
            report["architectures"][name] = bench_arch(name, ARCHS[name], Path(tmp), args.runs, args.warmup,
                                                       args.rounds)
            print(json.dumps(report["architectures"][name]["ratios_p50"], indent=2), flush=True)
    report["host"]["load_average_after"] = os.getloadavg()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    os.replace(tmp_out, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
