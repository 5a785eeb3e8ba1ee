"""How fast is edgetune's training step? utt/s, TFLOP/s and the QAT/fp32 ratio, each speed-up on and off.

Runs the trainer's own loop body (``collate``/``collate_gathered`` + ``_train_step``, bf16 autocast
on CUDA, AdamW, the optimizer and observers that ``train_model`` would build for the
:class:`~edgetune.train._fast.FastPath` under test) on synthetic utterances of 1-3.5 s resident on
the device, for the base presets ``5m`` (d256x6) and ``20m`` (d384x12), fp32 and QAT int8, batch
32/128/512. Variants: ``off`` (the step before issue 13), ``on`` (``FastPath.default``), one
speed-up left out at a time (``on-<name>``), and ``on+compile`` (``torch.compile``) where the time
budget allows. FLOPs of forward + backward are counted once per configuration with
``torch.utils.flop_counter.FlopCounterMode`` and scaled by padded frames (attention is quadratic in
the bucket length, so this is an estimate within a few percent). Every configuration runs under
an alarm; results are written after each one, so a run cut short still leaves its JSON.

    python3 benchmarks/train_speed.py --out results.json                  # the GPU run (< 4 min on an H200)
    python3 benchmarks/train_speed.py --quick --out /tmp/quick.json       # CPU smoke test: tiny model, 2 steps
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

from edgetune.base import BASE_PRESETS
from edgetune.knobs import Knobs
from edgetune.model import build_model
from edgetune.model.quant import set_quant
from edgetune.train import (WEIGHT_DECAY, Example, FastPath, Forward, apply_observer_mode, bucket_batches, collate,
                            collate_gathered, make_optimizer)
from edgetune.train.trainer import _train_step  # the trainer's own step, timed as is (allow-listed in tests)

ROOT = Path(__file__).resolve().parents[1]

PEAK_TFLOPS = {"H200": 790.0, "H100": 790.0}      # bf16 dense, as measured on this kind (issue 13)
ARCHS: dict[str, dict[str, Any]] = {
    **{name: dict(arch) for name, arch in BASE_PRESETS.items()},
    "smoke": {},                                                   # the smoke default: d96x2
    "tiny": {"d_model": 32, "n_layers": 1, "n_heads": 2},
}
GOALS = {"5m_fp32_utt_s": 40000, "5m_qat_utt_s": 25000, "20m_fp32_utt_s": 10000, "qat_fp32_ratio_max": 1.3}
VOCAB_SIZE = 29
PAD = -13.8155  # log(1e-6), the silence value of edgetune's features


class Alarm(BaseException):
    """Not an Exception: the trainer's compile fallback must not swallow it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise Alarm("time budget of this configuration ran out")


def commit() -> str:
    if os.environ.get("EDGETUNE_COMMIT"):
        return os.environ["EDGETUNE_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    except Exception:
        return "unknown"


def synthetic(n: int, device: torch.device, seed: int = 0) -> list[Example]:
    """Random utterances of 100-350 frames (1-3.5 s) with 1 label per 16 frames, on ``device``."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        frames = int(torch.randint(100, 351, (1,), generator=g))
        ids = torch.randint(1, VOCAB_SIZE, (frames // 16,), generator=g).tolist()
        out.append(Example(torch.randn(frames, 80, generator=g).to(device), ids, ""))
    return out


def peak_for(name: str) -> float | None:
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def run_config(model: Any, pool: list[Example], batch: int, fast: FastPath, device: torch.device, *,
               steps: int, warmup: int, count_flops: dict[tuple[int, str], float], precision: str,
               lr: float = 1e-3) -> dict[str, Any]:
    """Warm up, then time ``steps`` training steps; FLOPs per padded frame counted once per (batch, precision)."""
    gen = torch.Generator().manual_seed(0)
    apply_observer_mode(model, fast)
    forward = Forward(model, compile=fast.compile)
    opt = make_optimizer(model, lr, WEIGHT_DECAY, device, fast)
    gather = collate_gathered if fast.async_batches else collate
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    batches = [b for b in bucket_batches([e.frames for e in pool], batch, gen) if len(b) == batch]
    cuda = device.type == "cuda"

    def one(i: int) -> tuple[torch.Tensor, int]:
        b = gather([pool[j] for j in batches[i % len(batches)]], model.chunk_frames, model.subsampling, PAD)
        loss = _train_step(model, b, opt, device, autocast, lr, None, gen, forward=forward,
                           host_lengths=fast.async_batches)
        return loss, b.feats.shape[0] * b.feats.shape[1]

    t_compile = time.perf_counter()
    for i in range(warmup):
        one(i)
    if cuda:
        torch.cuda.synchronize(device)
    warmup_s = time.perf_counter() - t_compile
    key = (batch, precision)
    if key not in count_flops and not forward.active:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            _, frames = one(0)
        count_flops[key] = counter.get_total_flops() / frames
    running = torch.zeros((), device=device)
    padded = 0
    t0 = time.perf_counter()
    for i in range(steps):
        loss, frames = one(warmup + i)
        running += loss
        padded += frames
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    flops = count_flops.get(key, float("nan")) * padded
    return {"steps": steps, "warmup": warmup, "warmup_s": round(warmup_s, 3),
            "step_ms": round(1000 * seconds / steps, 3), "utt_per_s": round(steps * batch / seconds, 1),
            "padded_frames_per_s": round(padded / seconds, 1), "gflop_per_step": round(flops / steps / 1e9, 2),
            "tflops": round(flops / seconds / 1e12, 3), "mean_loss": float(running) / steps,
            "compiled": forward.active, "compile_error": forward.error}


def plan(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """Configurations in priority order: the main grid first, then ablations, then compile."""
    on = FastPath.default(device).with_(compile=False)
    variants = {"off": FastPath.off(), "on": on}
    out = []
    for preset in args.presets:
        for precision in ("fp32", "qat8"):
            for batch in args.batches:
                for name, fast in variants.items():
                    out.append({"preset": preset, "precision": precision, "batch": batch, "variant": name, "fast": fast})
    ab_batch = args.batches[len(args.batches) // 2]
    for precision in ("fp32", "qat8"):
        for field in ("sync_free_observer", "async_batches", "fused_adamw"):
            if getattr(on, field):
                out.append({"preset": args.presets[0], "precision": precision, "batch": ab_batch,
                            "variant": f"on-{field}", "fast": on.with_(**{field: False})})
    if args.compile:
        for precision in ("fp32", "qat8"):
            for batch in (args.batches[-1], args.batches[0]):
                out.append({"preset": args.presets[0], "precision": precision, "batch": batch,
                            "variant": "on+compile", "fast": on.with_(compile=True), "min_left_s": args.compile_min_s})
    return out


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by = {(r["preset"], r["precision"], r["batch"], r["variant"]): r for r in runs if "utt_per_s" in r}
    ratios, speedups = {}, {}
    for (preset, precision, batch, variant), r in by.items():
        if precision == "qat8" and (preset, "fp32", batch, variant) in by:
            ratios[f"{preset}/b{batch}/{variant}"] = round(r["step_ms"] / by[(preset, "fp32", batch, variant)]["step_ms"], 3)
        if variant != "off" and (preset, precision, batch, "off") in by:
            speedups[f"{preset}/{precision}/b{batch}/{variant}"] = round(
                r["utt_per_s"] / by[(preset, precision, batch, "off")]["utt_per_s"], 3)

    def best(preset: str, precision: str) -> float | None:
        vals = [r["utt_per_s"] for k, r in by.items() if k[0] == preset and k[1] == precision]
        return max(vals) if vals else None

    goals = {"5m_fp32_utt_s": best("5m", "fp32"), "5m_qat_utt_s": best("5m", "qat8"),
             "20m_fp32_utt_s": best("20m", "fp32"),
             "qat_fp32_ratio_max": min(ratios.values()) if ratios else None}
    reached = {k: (v is not None and (v <= GOALS[k] if k.endswith("_max") else v >= GOALS[k])) for k, v in goals.items()}
    return {"qat_over_fp32_step": ratios, "speedup_over_off": speedups, "best": goals, "goal": GOALS,
            "reached": reached}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--presets", nargs="+", default=["5m", "20m"], choices=sorted(ARCHS))
    ap.add_argument("--batches", nargs="+", type=int, default=[32, 128, 512])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=200.0, help="stop starting configurations after this")
    ap.add_argument("--config-limit-s", type=int, default=90, help="alarm per configuration")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="add torch.compile runs (default: on CUDA only)")
    ap.add_argument("--compile-min-s", type=float, default=75.0, help="start a compile run only with this much budget left")
    ap.add_argument("--quick", action="store_true", help="tiny model, batch 4, 2 steps (CPU smoke test)")
    args = ap.parse_args()
    t_start = time.monotonic()
    if args.quick:
        args.presets, args.batches, args.steps, args.warmup = ["tiny"], [4], 2, 1
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if args.compile is None:
        args.compile = device.type == "cuda" and not args.quick
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    result: dict[str, Any] = {
        "benchmark": "train_speed", "commit": commit(), "gpu": gpu, "device": str(device),
        "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "threads": torch.get_num_threads(), "peak_tflops_bf16": peak_for(gpu or ""),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "note": "utt/s over timed steps after warmup (synchronized wall clock); TFLOP/s from one counted step "
                "scaled by padded frames; variants: off = the step before issue 13, on = FastPath.default",
        "runs": [],
    }
    signal.signal(signal.SIGALRM, _on_alarm)
    pool_size = max(4 * max(args.batches), 64)
    pool = synthetic(pool_size, device)
    flops: dict[str, dict[tuple[int, str], float]] = {}
    models: dict[tuple[str, str], Any] = {}

    def model_for(preset: str, precision: str) -> Any:
        if (preset, precision) not in models:
            models.clear()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            torch.manual_seed(0)
            m = build_model("conformer_lite", Knobs(bits=32, chunk_ms=320), ARCHS[preset]).to(device).train()
            if precision == "qat8":
                set_quant(m, 8)
            models[(preset, precision)] = m
        return models[(preset, precision)]

    for cfg in plan(args, device):
        left = args.budget_s - (time.monotonic() - t_start)
        row: dict[str, Any] = {k: v for k, v in cfg.items() if k not in ("fast", "min_left_s")}
        row["fast"] = cfg["fast"].to_dict()
        if left < cfg.get("min_left_s", 5.0):
            row["skipped"] = f"time budget ({left:.0f} s left)"
            result["runs"].append(row)
            continue
        try:
            model = model_for(cfg["preset"], cfg["precision"])
            row["params"] = sum(p.numel() for p in model.parameters())
            signal.alarm(max(1, int(min(args.config_limit_s, left))))
            try:
                row.update(run_config(model, pool, cfg["batch"], cfg["fast"], device, steps=args.steps,
                                      warmup=args.warmup, count_flops=flops.setdefault(cfg["preset"], {}),
                                      precision=cfg["precision"]))
            finally:
                signal.alarm(0)
            peak = result["peak_tflops_bf16"]
            row["peak_share"] = round(row["tflops"] / peak, 4) if peak else None
        except (Exception, Alarm) as exc:  # one configuration failing must not cost the others
            row["error"] = f"{type(exc).__name__}: {exc}"[:600]
            models.clear()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        row["elapsed_s"] = round(time.monotonic() - t_start, 1)
        result["runs"].append(row)
        print(json.dumps({k: row.get(k) for k in ("preset", "precision", "batch", "variant", "utt_per_s", "step_ms",
                                                   "tflops", "error", "skipped")}), flush=True)
        result["summary"] = summarize(result["runs"])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, args.out)
    result["summary"] = summarize(result["runs"])
    result["total_s"] = round(time.monotonic() - t_start, 1)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, args.out)
    print(json.dumps(result["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
