#!/usr/bin/env python3
"""Measure candidates at one fixed protocol with K concurrent trials on one GPU (issue 5).

Two modes, both writing JSON under ``--out``:

``grid``
    Every configuration of a grid (default: bits {4, 8, 32} x sparsity {0, .25, .5, .75} x
    depth multiplier {.5, .75, 1} x chunk {160, 320, 640, 1280} ms) through the real
    candidate pipeline (QAT training, pruning, ONNX export, WER on the exported file with
    ONNX Runtime, latency through the bench harness). One JSON line per configuration in
    ``grid.jsonl``, with the dev WER after every epoch (the learning curve). Resumable: a
    configuration already in ``grid.jsonl`` is skipped, so the table can be filled over
    several runs of a time-limited machine. ``--to-csv`` turns it into the frozen table.

``throughput``
    The same set of trials at equal fidelity with K = 1, 2, 4, 8 worker processes sharing
    one GPU: trials per hour, GPU utilisation and energy (NVML), per K, in ``throughput.json``.

GPU-seconds of a trial are the wall seconds its training held the GPU (``train_seconds``);
with K concurrent workers those overlap, which is why throughput is reported per wall hour.
Each worker process is pinned to its own CPU cores, so latency measurements (one ORT thread)
of concurrent workers do not share a core.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
from pathlib import Path

GRID = {
    "bits": [4, 8, 32],
    "sparsity": [0.0, 0.25, 0.5, 0.75],
    "depth_multiplier": [0.5, 0.75, 1.0],
    "chunk_ms": [160, 320, 640, 1280],
}


def config_id(cfg: dict) -> str:
    extra = "".join(f"_{k}{v}" for k, v in sorted(cfg.items()) if k not in GRID)
    return "b{bits}_s{sparsity}_d{depth_multiplier}_c{chunk_ms}".format(**cfg) + extra


def grid_configs(grid: dict | None = None) -> list[dict]:
    grid = grid or GRID
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*grid.values())]


# ----------------------------------------------------------------------------- worker side
def _worker(rank: int, cores: list[int], jobs: "mp.Queue", results: "mp.Queue", args: dict) -> None:
    from edgetune.search import pin_this_process

    pin_this_process(tuple(cores))
    from edgetune.data import load_dataset
    from edgetune.knobs import Knobs, TrainSettings
    from edgetune.pipeline import run_candidate

    splits = load_dataset(args["dataset"], progress=False)
    train = TrainSettings(epochs=args["epochs"], batch_size=args["batch_size"], seed=args["seed"],
                          device=args["device"])
    while True:
        cfg = jobs.get()
        if cfg is None:
            return
        curve: list[dict] = []
        t0 = time.time()
        row = {"id": config_id(cfg), **cfg, "epochs": args["epochs"], "worker": rank}
        knobs = {"lr": args["lr"], **cfg} if args.get("lr") else cfg
        derive = {"base": args["base"], "init": args["init"], "distill_weight": args["distill"]} if args.get("base") else {}
        try:
            res = run_candidate(Knobs(**knobs), Path(args["trials_dir"]) / row["id"], dataset=splits, train=train,
                                bench_runs=args["bench_runs"], bench_warmup=args["bench_warmup"],
                                progress=False, on_epoch=lambda e, m: curve.append({"epoch": e, **m}),
                                enforce_parity=args.get("enforce_parity", True), **derive)
            row.update(ok=True, curve=curve, test_wer=res["wer"], worst_group_wer=res["worst_group_wer"],
                       latency_p90_ms=res["latency_ms"]["p90"], algorithmic_latency_ms=res["algorithmic_latency_ms"],
                       size_bytes=res["size_bytes"], train_seconds=res["train_seconds"],
                       parity=res.get("parity"), parity_passed=bool((res.get("parity") or {}).get("passed", True)),
                       host=res.get("host"), device=res.get("device"), init=res.get("init"),
                       wer_base=res.get("wer_base"), quant_cost=res.get("quant_cost"),
                       export_error=res.get("export_error"), gpu=_gpu_name())
        except Exception as exc:  # a failed configuration is a row too, with its reason
            row.update(ok=False, error=f"{type(exc).__name__}: {exc}", curve=curve)
        row["wall_seconds"] = time.time() - t0
        results.put(row)


def _gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


class _GpuSampler:
    """Samples GPU utilisation and energy through NVML in a background thread (if available)."""

    def __init__(self, period_s: float = 0.5) -> None:
        self.util: list[float] = []
        self.energy_j: float | None = None
        self._stop = threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._h = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:
            self._nvml = None
        self._period = period_s
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _energy(self) -> float | None:
        try:
            return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._h) / 1000.0
        except Exception:
            return None

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self.util.append(float(self._nvml.nvmlDeviceGetUtilizationRates(self._h).gpu))

    def __enter__(self) -> "_GpuSampler":
        if self._nvml:
            self._e0 = self._energy()
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._nvml:
            self._stop.set()
            self._thread.join()
            e1 = self._energy()
            if e1 is not None and self._e0 is not None:
                self.energy_j = e1 - self._e0

    def summary(self) -> dict:
        if not self._nvml:
            return {"gpu_util_mean": None, "gpu_util_p90": None, "energy_j": None, "nvml": False}
        u = sorted(self.util) or [0.0]
        return {"gpu_util_mean": sum(u) / len(u), "gpu_util_p90": u[int(0.9 * (len(u) - 1))],
                "energy_j": self.energy_j, "nvml": True}


def run_pool(configs: list[dict], workers: int, args: dict, on_row, deadline: float | None = None) -> dict:
    """Run ``configs`` on ``workers`` processes; call ``on_row`` per finished row. Returns timing."""
    ctx = mp.get_context("spawn")
    jobs, results = ctx.Queue(), ctx.Queue()
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    per = args.get("cores_per_worker") or max(1, ncpu // workers)
    if per * workers > ncpu:
        raise SystemExit(f"--cores-per-worker {per} x {workers} workers needs {per * workers} cores; this machine has {ncpu}")
    procs = [ctx.Process(target=_worker, args=(r, list(range(r * per, r * per + per)), jobs, results, args))
             for r in range(workers)]
    for p in procs:
        p.start()
    pending = list(configs)
    inflight = 0
    t0 = time.time()
    with _GpuSampler() as gpu:
        for _ in range(min(workers, len(pending))):
            jobs.put(pending.pop(0))
            inflight += 1
        done = 0
        while inflight:
            try:
                row = results.get(timeout=30)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    raise RuntimeError("every worker process died; see the log above") from None
                continue
            inflight -= 1
            done += 1
            on_row(row)
            if pending and (deadline is None or time.time() < deadline):
                jobs.put(pending.pop(0))
                inflight += 1
        wall = time.time() - t0
    for _ in procs:
        jobs.put(None)
    for p in procs:
        p.join(timeout=60)
    return {"workers": workers, "trials": done, "wall_seconds": wall,
            "trials_per_hour": 3600.0 * done / wall if wall else None, **gpu.summary()}


# ----------------------------------------------------------------------------- modes
def _append(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def mode_grid(a: argparse.Namespace, common: dict) -> None:
    out = Path(a.out)
    path = out / "grid.jsonl"
    if a.resume_from and Path(a.resume_from).exists() and not path.exists():
        path.write_text(Path(a.resume_from).read_text())
    done = set()
    if path.exists():
        done = {json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()}
    todo = [c for c in grid_configs(json.loads(a.grid) if a.grid else None) if config_id(c) not in done]
    if a.limit:
        todo = todo[: a.limit]
    print(f"[grid] {len(done)} done, {len(todo)} to run with {a.workers} workers", flush=True)

    def on_row(row: dict) -> None:
        _append(path, row)
        status = f"wer={row['test_wer']:.3f} p90={row['latency_p90_ms']:.2f}ms" if row["ok"] else row["error"][:120]
        print(f"[grid] {row['id']} {row['wall_seconds']:.0f}s {status}", flush=True)

    deadline = time.time() + a.time_budget if a.time_budget else None
    timing = run_pool(todo, a.workers, common, on_row, deadline)
    _append(out / "grid_runs.jsonl", {"time": time.time(), **timing})
    print(f"[grid] {json.dumps(timing)}", flush=True)


def mode_throughput(a: argparse.Namespace, common: dict) -> None:
    out = Path(a.out)
    grid = json.loads(a.grid) if a.grid else GRID
    configs = [c for c in grid_configs(grid) if c["bits"] == a.tp_bits and c["chunk_ms"] == 320][: a.trials_per_k]
    rows = []
    for k in [int(x) for x in a.ks.split(",")]:
        n = a.trials_per_k * k if a.scale_trials else a.trials_per_k
        todo = [configs[i % len(configs)] for i in range(n)]
        ok = []

        def on_row(row: dict, k: int = k) -> None:
            ok.append(row)
            _append(out / "throughput_rows.jsonl", {"k": k, **row})
            if not row["ok"]:
                print(f"[throughput] K={k} {row['id']} failed: {row['error'][:400]}", flush=True)

        timing = run_pool(todo, k, {**common, "trials_dir": str(Path(common["trials_dir"]) / f"tp_k{k}")}, on_row)
        timing["failed"] = sum(1 for r in ok if not r["ok"])
        timing["train_seconds_mean"] = sum(r.get("train_seconds", 0) for r in ok) / max(1, len(ok))
        rows.append(timing)
        print(f"[throughput] K={k}: {json.dumps(timing)}", flush=True)
    base = rows[0]["trials_per_hour"]
    for r in rows:
        r["speedup_vs_k1"] = r["trials_per_hour"] / base if base else None
    (out / "throughput.json").write_text(json.dumps({"rows": rows, "args": vars(a)}, indent=2))


def to_csv(jsonl: Path, csv_path: Path) -> None:
    """Freeze grid.jsonl into the replay table (schema: benchmarks/tables/README.md)."""
    import pandas as pd

    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("ok")]
    epochs = max(r["epochs"] for r in rows)
    table = []
    for r in rows:
        rec = {k: r[k] for k in ("bits", "sparsity", "depth_multiplier", "chunk_ms", "epochs")}
        for e in range(1, epochs + 1):
            rec[f"dev_wer_{e}"] = r["curve"][e - 1]["wer"] if e <= len(r["curve"]) else None
        rec.update(test_wer=r["test_wer"], worst_group_wer=r["worst_group_wer"],
                   latency_ms=r["latency_p90_ms"] + r["algorithmic_latency_ms"], size_bytes=r["size_bytes"],
                   train_gpu_seconds=r["train_seconds"], epoch_gpu_seconds=r["train_seconds"] / r["epochs"],
                   measure_seconds=r["wall_seconds"] - r["train_seconds"])
        rec.update(parity_passed=int(bool(r.get("parity_passed", True))),  # optional columns of the schema
                   **{k: r.get(k) for k in ("wer_base", "quant_cost", "export_error")})
        table.append(rec)
    pd.DataFrame(table).sort_values(["bits", "sparsity", "depth_multiplier", "chunk_ms"]).to_csv(csv_path, index=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["grid", "throughput"])
    p.add_argument("--out", required=True)
    p.add_argument("--dataset", default="smoke")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--bench-runs", type=int, default=100)
    p.add_argument("--bench-warmup", type=int, default=10)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--grid", default="", help='the grid as JSON, e.g. \'{"bits": [4, 8], "sparsity": [0], '
                                            '"depth_multiplier": [1], "chunk_ms": [320]}\' (default: GRID)')
    p.add_argument("--base", default="", help="a base directory: every configuration is derived from it "
                                            "(prune, QAT, distillation fine-tune for --epochs)")
    p.add_argument("--init", default="base", choices=["base", "scratch"])
    p.add_argument("--distill", type=float, default=0.5, help="distillation weight (with --base)")
    p.add_argument("--lr", type=float, default=0.0, help="learning rate (default: the Knobs default)")
    p.add_argument("--trials-dir", default="", help="where the trained models go (default: OUT/trials); "
                                                   "keep them off OUT on a machine whose OUT is copied back")
    p.add_argument("--record-parity-failures", action="store_true",
                   help="grid: measure a configuration whose export fails the parity gate anyway and mark it "
                        "parity_passed=false (a table needs every configuration; a search fails such trials)")
    p.add_argument("--time-budget", type=float, default=0, help="stop starting new configs after S seconds")
    p.add_argument("--resume-from", default="", help="grid.jsonl of an earlier run to continue")
    p.add_argument("--ks", default="1,2,4,8")
    p.add_argument("--cores-per-worker", type=int, default=0,
                   help="CPU cores pinned per worker (default: all cores / K). Fix it (e.g. 2) so every K "
                        "gives a worker the same CPU and only the GPU is shared")
    p.add_argument("--trials-per-k", type=int, default=8)
    p.add_argument("--tp-bits", type=int, default=32, help="bit width of the throughput trials")
    p.add_argument("--scale-trials", action="store_true", help="run trials_per_k * K trials for each K")
    p.add_argument("--to-csv", default="", help="with mode grid: write the frozen CSV table here and exit")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.to_csv:
        to_csv(out / "grid.jsonl", Path(a.to_csv))
        return 0
    common = {"dataset": a.dataset, "epochs": a.epochs, "batch_size": a.batch_size, "seed": a.seed,
              "device": a.device, "bench_runs": a.bench_runs, "bench_warmup": a.bench_warmup,
              "trials_dir": a.trials_dir or str(out / "trials"),
              "enforce_parity": not a.record_parity_failures, "cores_per_worker": a.cores_per_worker,
              "base": a.base, "init": a.init, "distill": a.distill, "lr": a.lr}
    (mode_grid if a.mode == "grid" else mode_throughput)(a, common)
    return 0


if __name__ == "__main__":
    sys.exit(main())
