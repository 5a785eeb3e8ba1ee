#!/usr/bin/env python3
"""Learning-rate / fidelity probe on the GPU: a few configurations in parallel, learning curves to $OUT.

Usage: python3 benchmarks/gpu_sweep.py OUT_DIR EPOCHS WORKERS '<json list of knob dicts>'
"""
import json
import sys
from pathlib import Path

import gpu_grid  # a sibling: a script's own directory is first on sys.path



def main() -> None:
    out, epochs, workers, configs = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
    common = {"dataset": "grid", "epochs": epochs, "batch_size": 32, "seed": 0, "device": "cuda",
              "bench_runs": 50, "bench_warmup": 10, "trials_dir": str(out / "sweep")}

    def on_row(row):
        gpu_grid._append(out / "sweep.jsonl", row)
        curve = " ".join(f"{c['wer']:.2f}" for c in row.get("curve", []))
        tail = f"test_wer={row['test_wer']:.3f}" if row["ok"] else row["error"][:300]
        print(f"[sweep] {row['id']} {row['wall_seconds']:.0f}s dev_wer: {curve} | {tail}", flush=True)

    print(json.dumps(gpu_grid.run_pool(configs, workers, common, on_row)), flush=True)


if __name__ == "__main__":
    main()
