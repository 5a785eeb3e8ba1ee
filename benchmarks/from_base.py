#!/usr/bin/env python3
"""From-base vs scratch at the same knobs (issue 12): WER and GPU-seconds of each, through the
product's own ``edgetune.pipeline.run_candidate``.

For every setting, two candidates are made on the same dataset and measured the same way
(WER of the exported file in ONNX Runtime on the test split):

- ``base``: derived from a base directory (prune to width and sparsity, QAT, distillation
  fine-tune for ``--base-epochs``);
- ``scratch``: trained from random initialisation for ``--scratch-epochs`` (the old recipe:
  QAT in the last 40 %, pruning at 40 %), same family and architecture.

A candidate whose export fails the parity gate is measured anyway (its ``parity`` says so): a
comparison needs both WERs, and a poorly trained scratch model is exactly what fails it.
GPU-seconds are the seconds a job's training held the GPU, so they grow with ``--concurrency``:
compare them only within one run.

Jobs run as ``--concurrency`` subprocesses (one GPU shared); each writes one JSON line to
``<out>/from_base.jsonl`` (resumable: finished jobs are skipped). ``--summary`` writes
``<out>/from_base.json``: per setting both WERs and GPU-seconds, the GPU-seconds ratio, and the
quantization cost and export error of the derived candidates against the goals
(8-bit quant cost <= 0.003, 4-bit <= 0.01, export error <= 0.001).

    python3 benchmarks/from_base.py --base runs/base-5m --dataset grid --out $OUT/from_base
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = [  # bits, sparsity, depth multiplier (width), chunk ms
    (8, 0.0, 1.0, 320), (4, 0.0, 1.0, 320), (16, 0.0, 1.0, 320), (8, 0.5, 1.0, 320),
    (8, 0.0, 0.5, 320), (4, 0.5, 0.5, 320), (32, 0.0, 0.5, 160), (8, 0.25, 0.75, 640),
]
FIELDS = ("parity", "wer", "wer_torch", "wer_base", "quant_cost", "export_error", "gpu_seconds", "train_seconds",
          "params", "size_bytes", "latency_ms", "epochs_run", "device")


def job_id(setting: tuple, init: str) -> str:
    b, s, d, c = setting
    return f"{init}_b{b}_s{s}_d{d}_c{c}"


def run_one(args: argparse.Namespace, index: int) -> dict:
    from edgetune.knobs import Knobs, TrainSettings
    from edgetune.pipeline import run_candidate

    setting = SETTINGS[index // 2]
    init = ("base", "scratch")[index % 2]
    b, s, d, c = setting
    epochs = args.base_epochs if init == "base" else args.scratch_epochs
    lr = args.base_lr if init == "base" else args.scratch_lr
    train = TrainSettings(epochs=epochs, batch_size=args.batch_size, device=args.device, seed=0)
    t0 = time.time()
    r = run_candidate(Knobs(bits=b, sparsity=s, depth_multiplier=d, chunk_ms=c, lr=lr), Path(args.out) / "runs" /
                      job_id(setting, init), dataset=args.dataset, train=train, base=args.base, init=init,
                      bench_runs=100, bench_warmup=10, progress=False, enforce_parity=False)
    return {"id": job_id(setting, init), "init": init, "bits": b, "sparsity": s, "depth_multiplier": d,
            "chunk_ms": c, "epochs": epochs, "lr": lr, "wall_seconds": time.time() - t0,
            "gpu": _gpu_name(), **{k: r.get(k) for k in FIELDS},
            "latency_p50_ms": (r.get("bench") or {}).get("latency_ms", {}).get("p50")
            if isinstance((r.get("bench") or {}).get("latency_ms"), dict) else None}


def _gpu_name() -> str | None:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:
        return None


def summarize(out: Path) -> dict:
    rows = [json.loads(line) for line in (out / "from_base.jsonl").read_text().splitlines() if line.strip()]
    by = {(r["bits"], r["sparsity"], r["depth_multiplier"], r["chunk_ms"]): {} for r in rows}
    for r in rows:
        by[(r["bits"], r["sparsity"], r["depth_multiplier"], r["chunk_ms"])][r["init"]] = r
    settings = []
    for key, pair in by.items():
        base, scratch = pair.get("base"), pair.get("scratch")
        entry = {"bits": key[0], "sparsity": key[1], "depth_multiplier": key[2], "chunk_ms": key[3],
                 "base": base, "scratch": scratch}
        if base and scratch:
            entry["wer_delta"] = base["wer"] - scratch["wer"]       # <= 0: from-base no worse
            # GPU-seconds on CUDA; on a CPU-only machine the training seconds stand in (named so)
            key = "gpu_seconds" if scratch.get("gpu_seconds") else "train_seconds"
            entry["cost_measure"] = key
            entry["gpu_seconds_ratio"] = base[key] / scratch[key] if scratch.get(key) else None
            entry["no_worse"] = base["wer"] <= scratch["wer"]
        settings.append(entry)
    derived = [s["base"] for s in settings if s.get("base")]
    full = [r for r in derived if r["sparsity"] == 0 and r["depth_multiplier"] == 1.0]

    def goal(values: list[bool]) -> bool | None:  # None: nothing measured, so neither met nor missed
        return all(values) if values else None

    goals = {
        "from_base_no_worse": goal([s["no_worse"] for s in settings if "no_worse" in s]),
        "gpu_seconds_at_most_1_5": goal([s["gpu_seconds_ratio"] is not None and s["gpu_seconds_ratio"] <= 0.2
                                         for s in settings if "gpu_seconds_ratio" in s]),
        "quant_cost_8bit_le_0.003": goal([r["quant_cost"] <= 0.003 for r in full if r["bits"] == 8]),
        "quant_cost_4bit_le_0.01": goal([r["quant_cost"] <= 0.01 for r in full if r["bits"] == 4]),
        "export_error_le_0.001": goal([abs(r["export_error"]) <= 0.001 for r in derived]),
    }
    pairs = sum("no_worse" in s for s in settings)
    missing = [job_id((s["bits"], s["sparsity"], s["depth_multiplier"], s["chunk_ms"]), init)
               for s in settings for init in ("base", "scratch") if not s.get(init)]
    missing += [job_id(st, init) for st in SETTINGS for init in ("base", "scratch")
                if (st[0], st[1], st[2], st[3]) not in by]
    summary = {"settings": settings, "goals": goals, "jobs": len(rows), "pairs_measured": pairs,
               "settings_planned": len(SETTINGS), "jobs_missing": missing,
               "gpu": next((r.get("gpu") for r in rows if r.get("gpu")), None)}
    (out / "from_base.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="base directory (edgetune base train)")
    p.add_argument("--dataset", default="grid")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--base-epochs", type=int, default=2)
    p.add_argument("--scratch-epochs", type=int, default=15)
    p.add_argument("--base-lr", type=float, default=1e-3)
    p.add_argument("--scratch-lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--limit", type=int, default=None, help="only the first N settings (a quick check)")
    p.add_argument("--deadline", type=float, default=None,
                   help="seconds: start no job after this, stop running ones at it (finished jobs are kept)")
    p.add_argument("--job", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--summary", action="store_true", help="only (re)write from_base.json")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.job is not None:
        row = run_one(args, args.job)
        print(json.dumps(row))
        return 0
    if args.summary:
        print(json.dumps(summarize(args.out)["goals"], indent=1))
        return 0
    done_file = args.out / "from_base.jsonl"
    done = {json.loads(l)["id"] for l in done_file.read_text().splitlines() if l.strip()} if done_file.exists() else set()
    n = 2 * min(len(SETTINGS), args.limit or len(SETTINGS))
    todo = [i for i in range(n) if job_id(SETTINGS[i // 2], ("base", "scratch")[i % 2]) not in done]
    todo.sort(key=lambda i: i % 2 == 0)  # scratch (long) first, the short derived jobs fill in
    running: list[tuple[int, subprocess.Popen]] = []
    base_cmd = [sys.executable, __file__, *[a for a in sys.argv[1:]]]
    t0 = time.monotonic()
    while todo or running:
        if args.deadline is not None and time.monotonic() - t0 > args.deadline:
            for i, proc in running:
                proc.kill()
                print(f"job {i} stopped at the deadline", flush=True)
            break
        while todo and len(running) < args.concurrency and (args.deadline is None or
                                                            time.monotonic() - t0 < args.deadline):
            i = todo.pop(0)
            log = open(args.out / f"job{i}.log", "w")
            # the jobs import edgetune from this checkout when it is not installed (the GPU machine)
            path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
            running.append((i, subprocess.Popen([*base_cmd, "--job", str(i)], stdout=subprocess.PIPE, stderr=log,
                                                text=True, env={**os.environ, "OMP_NUM_THREADS": "1",
                                                                "PYTHONPATH": path})))
        time.sleep(1.0)
        for i, proc in list(running):
            if proc.poll() is None:
                continue
            running.remove((i, proc))
            out = proc.stdout.read().strip().splitlines()
            if proc.returncode == 0 and out:
                with open(done_file, "a") as f:
                    f.write(out[-1] + "\n")
                print(f"done {job_id(SETTINGS[i // 2], ('base', 'scratch')[i % 2])}: {out[-1][:200]}", flush=True)
            else:
                print(f"job {i} failed (rc {proc.returncode}); see {args.out / f'job{i}.log'}", flush=True)
    print(json.dumps(summarize(args.out)["goals"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
