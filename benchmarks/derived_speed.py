"""Issue 13's GPU figures for derived candidates and batch size, computed from the committed raw files.

Inputs (all measured on the lent nvidia-h200 by benchmarks/gpu_table.sh, benchmarks/gpu_derived_speed.sh
and two ``edgetune base train`` runs; see benchmarks/results/derived-speed-h200.md):

- ``benchmarks/tables/derived-5m-h200/grid.jsonl``: the frozen table, 8 concurrent trials (K=8);
- ``<dir>/k1/grid.jsonl``: three of its configurations again, one at a time (K=1);
- ``<dir>/curve-w0.5/grid.jsonl``: the int8 width-0.5 candidate fine-tuned for 12 epochs alone;
- ``<dir>/batch/*-card.json``: the default 5 M recipe on ``grid`` at batch 32, 128 (3 seeds) and 512.

    python benchmarks/derived_speed.py [--dir benchmarks/results/derived-speed-h200]

Writes ``<dir>/summary.json``; prints it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def concurrency(table: list[dict], k1: list[dict], k1_runs: list[dict]) -> dict:
    """Trials per GPU-hour for the same configurations at K=1 and inside the K=8 table."""
    ids = {r["id"] for r in k1}
    k8 = [r for r in table if r["id"] in ids]
    per_k1 = statistics.fmean(r["wall_seconds"] for r in k1)
    per_k8 = statistics.fmean(r["wall_seconds"] for r in k8)
    k1_rate = k1_runs[-1]["trials_per_hour"]
    k8_rate = 8 * 3600 / per_k8            # 8 such trials side by side, each taking per_k8 seconds
    return {
        "configurations": sorted(ids),
        "same_test_wer": all(abs(a["test_wer"] - b["test_wer"]) < 1e-12
                             for a in k1 for b in k8 if a["id"] == b["id"]),
        "k1": {"trial_wall_seconds_mean": per_k1, "trials_per_gpu_hour": k1_rate,
               "gpu_util_mean": k1_runs[-1]["gpu_util_mean"]},
        "k8": {"trial_wall_seconds_mean": per_k8, "trials_per_gpu_hour": k8_rate},
        "k8_over_k1": k8_rate / k1_rate,
    }


def time_to_within(curve: list[dict], tol: float = 0.01) -> dict:
    final = curve[-1]["wer"]
    hit = next(c for c in curve if c["wer"] <= final + tol)
    return {"epochs": len(curve), "final_dev_wer": final, "tolerance": tol, "epoch_reached": hit["epoch"],
            "gpu_seconds_reached": hit["seconds"], "goal_gpu_seconds": 30.0, "goal_met": hit["seconds"] <= 30.0,
            "dev_wer_at_30s": max((c for c in curve if c["seconds"] <= 30.0), key=lambda c: c["seconds"])["wer"],
            "curve": [{"epoch": c["epoch"], "dev_wer": c["wer"], "seconds": c["seconds"]} for c in curve]}


def batch_sizes(folder: Path) -> dict:
    out: dict = {}
    for card_path in sorted(folder.glob("*-card.json")):
        card = json.loads(card_path.read_text(encoding="utf-8"))
        t = card["training"]
        b = out.setdefault(str(t["batch_size"]), {"lr": t["lr"], "runs": []})
        b["runs"].append({"seed": t["seed"], "test_wer": card["wer"]["320"]["test"], "steps": t.get("steps"),
                          "train_seconds": t["train_seconds"],
                          "dev_wer_by_epoch": [(h["epoch"], h["wer"], h.get("seconds")) for h in t["history"]]})
    for b in out.values():
        w = [r["test_wer"] for r in b["runs"]]
        b["test_wer_mean"] = statistics.fmean(w)
        b["test_wer_std"] = statistics.stdev(w) if len(w) > 1 else None
        b["train_seconds_mean"] = statistics.fmean(r["train_seconds"] for r in b["runs"])
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, default=ROOT / "benchmarks" / "results" / "derived-speed-h200")
    p.add_argument("--table", type=Path, default=ROOT / "benchmarks" / "tables" / "derived-5m-h200" / "grid.jsonl")
    a = p.parse_args(argv)
    summary = {
        "gpu": "NVIDIA H200 (lent nvidia-h200, 16 cores)",
        "concurrency": concurrency(_rows(a.table), _rows(a.dir / "k1" / "grid.jsonl"),
                                   _rows(a.dir / "k1" / "grid_runs.jsonl")),
        "int8_width_0.5_time_to_within_0.01": time_to_within(_rows(a.dir / "curve-w0.5" / "grid.jsonl")[0]["curve"]),
        "batch_size_at_16_epochs": batch_sizes(a.dir / "batch"),
    }
    (a.dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k != "batch_size_at_16_epochs"}, indent=1)[:3000])
    for b, v in summary["batch_size_at_16_epochs"].items():
        print(f"batch {b}: test WER {v['test_wer_mean']:.4f} ± {v['test_wer_std'] or 0:.4f}, "
              f"{v['train_seconds_mean']:.0f} s, steps {[r['steps'] for r in v['runs']]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
