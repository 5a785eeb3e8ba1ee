"""Issue 19's GPU comparison: random search, TPE + Hyperband and PBT tune the base's recipe at an equal
time budget, then each one's best recipe and the default recipe are retrained at equal epochs.

Phase 1 runs the three tuners side by side on one GPU, each as ``edgetune base tune --workers W
--time-budget B`` (PBT: ``--pbt``): the same number of processes and the same seconds each, so the same
share of the GPU. Phase 2 retrains every method's best recipe and the config's own (default) recipe
with ``edgetune base train`` once per seed, all at once, at ``--final-epochs`` on all of train, and reads
the test WER of each exported fp32 ONNX file from its card. Every step is skipped when its output
exists, so a killed run continues where it stopped.

    python benchmarks/base_tune_compare.py --config configs/base-tune-5m-grid.yaml --out runs/tune-compare \\
        --budget 150 --workers 2 --final-epochs 16 --seeds 0 1 2

Writes ``compare.json`` and ``compare.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from edgetune.base import load_tune_config

ROOT = Path(__file__).resolve().parents[1]
METHODS = {
    "random": {"sampler": "random", "pruner": {"type": "none"}},
    "hyperband": {"sampler": "tpe"},    # the config's own pruner settings, type forced below
    "pbt": {},
}


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _template(path: Path) -> tuple[dict, Any]:
    """The tune YAML as a mapping, and as edgetune reads it (its base inline or the base YAML it names)."""
    return yaml.safe_load(path.read_text(encoding="utf-8")), load_tune_config(path)


def method_config(tune: dict, base: dict, method: str) -> dict:
    d = {**tune, "base": base, "study_name": f"{tune.get('study_name', 'tune')}-{method}", **METHODS[method]}
    if method == "hyperband":
        d["pruner"] = {**tune.get("pruner", {}), "type": "hyperband"}
    d["n_trials"] = max(int(tune.get("n_trials", 20)), 1000)   # the time budget stops the study, not the count
    return d


def run_tuners(tune: dict, base: dict, out: Path, *, methods: list[str], budget: float, workers: int) -> dict:
    """Phase 1: the tuners side by side; returns {method: result}."""
    procs, results = {}, {}
    for m in methods:
        folder = out / m
        summary = folder / "study" / ("pbt/summary.json" if m == "pbt" else "summary.json")
        if summary.is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        cfg = folder / "tune.yaml"
        cfg.write_text(yaml.safe_dump(method_config(tune, base, m), sort_keys=False), encoding="utf-8")
        cmd = [sys.executable, "-m", "edgetune", "base", "tune", "--config", str(cfg), "--study-dir",
               str(folder / "study"), "--workers", str(workers), "--no-final", "--time-budget", str(budget)]
        if m == "pbt":
            cmd.append("--pbt")
        log = open(folder / "tune.log", "w", encoding="utf-8")
        procs[m] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT),
                    time.monotonic(), log)
        print(f"[tune] {m}: started ({' '.join(cmd[3:])})", flush=True)
    for m, (p, t0, log) in procs.items():
        rc = p.wait()
        log.close()
        (out / m / "wall.json").write_text(json.dumps({"rc": rc, "wall_seconds": time.monotonic() - t0}))
        print(f"[tune] {m}: rc {rc} after {time.monotonic() - t0:.0f} s", flush=True)
        if rc:
            sys.exit(f"{m} tuner failed (rc {rc}); see {out / m / 'tune.log'}")
    for m in methods:
        study = out / m / "study"
        wall = json.loads((out / m / "wall.json").read_text())
        if m == "pbt":
            s = json.loads((study / "pbt" / "summary.json").read_text())
            results[m] = {"best_params": s["best"]["params"], "best_value": s["best"]["value"],
                          "population": s["population"], "epochs": s["epochs"],
                          "epochs_reached": s.get("epochs_reached", s["epochs"]),
                          "exploit_events": len(s["events"]), **wall}
        else:
            s = json.loads((study / "summary.json").read_text())
            results[m] = {"best_params": s["best"]["params"], "best_value": s["best"]["value"],
                          "best_trial": s["best"]["number"], "counts": s["counts"],
                          "importance": s.get("importance"), **wall}
    return results


def run_finals(config: Any, out: Path, recipes: dict[str, dict], *, epochs: int, seeds: list[int],
               concurrency: int) -> dict:
    """Phase 2: every recipe x seed trained by ``edgetune base train`` (concurrently); returns the cards' figures."""
    jobs = []
    for name, params in recipes.items():
        for seed in seeds:
            folder = out / "final" / f"{name}-seed{seed}"
            cfg = out / "final" / f"{name}-seed{seed}.yaml"
            cfg.parent.mkdir(parents=True, exist_ok=True)
            recipe = config.recipe(params, epochs=epochs, seed=seed).to_dict()   # as base tune builds it
            cfg.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
            jobs.append((name, seed, cfg, folder))
    pending = [j for j in jobs if not (j[3] / "card.json").is_file()]
    running: list = []
    while pending or running:
        while pending and len(running) < concurrency:
            name, seed, cfg, folder = pending.pop(0)
            log = open(str(folder) + ".log", "w", encoding="utf-8")
            cmd = [sys.executable, "-m", "edgetune", "base", "train", "--config", str(cfg), "--out", str(folder),
                   "--no-progress"]
            running.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT),
                            log, name, seed, folder))
        time.sleep(1.0)
        for r in [r for r in running if r[0].poll() is not None]:
            running.remove(r)
            r[1].close()
            print(f"[final] {r[2]} seed {r[3]}: rc {r[0].returncode}", flush=True)
            if r[0].returncode:
                sys.exit(f"final training {r[2]} seed {r[3]} failed; see {r[4]}.log")
    chunk = str(config.base.export_chunk_ms)
    finals: dict = {}
    for name, seed, _, folder in jobs:
        card = json.loads((folder / "card.json").read_text())
        finals.setdefault(name, {"params": recipes[name], "runs": []})["runs"].append({
            "seed": seed, "test_wer": card["wer"][chunk]["test"], "dev_wer": card["wer"][chunk]["dev"],
            "gpu_seconds": card["training"].get("gpu_seconds"), "train_seconds": card["training"]["train_seconds"],
            "device": card["training"].get("device")})
    for f in finals.values():
        for key in ("test_wer", "dev_wer", "gpu_seconds"):
            vals = [r[key] for r in f["runs"] if r[key] is not None]
            f[key] = {"mean": statistics.fmean(vals) if vals else None,
                      "std": statistics.stdev(vals) if len(vals) > 1 else None, "n": len(vals)}
    return finals


def markdown(summary: dict) -> str:
    lines = [f"# Tuning the base recipe at an equal budget ({summary['machine']})", "",
             f"Phase 1: each tuner ran {summary['workers']} process(es) for a {summary['budget_seconds']:g} s budget, "
             f"all side by side on one GPU. Phase 2: each best recipe and the default recipe retrained "
             f"{len(summary['seeds'])} times (seeds {summary['seeds']}) at {summary['final_epochs']} epochs on all "
             "of train, all at once; test WER of the exported fp32 streaming ONNX file at "
             f"{summary['chunk_ms']} ms.", "",
             f"| recipe | tuner wall s | proxy trials (complete / pruned) | best proxy dev {summary['metric']} | "
             "final test WER mean ± std | GPU-s per final run |", "|---|---|---|---|---|---|"]
    for name, f in summary["final"].items():
        t = summary["tuners"].get(name, {})
        if "counts" in t:
            trials = f"{t['counts'].get('complete', 0)} / {t['counts'].get('pruned', 0)}"
        elif t:
            trials = f"population {t['population']}, {t['epochs_reached']}/{t['epochs']} epochs, " \
                     f"{t['exploit_events']} exploits"
        else:
            trials = "(the config's own recipe)"
        best = f"{t['best_value']:.4f}" if t else "-"
        wall = f"{t['wall_seconds']:.0f}" if t else "-"
        w, g = f["test_wer"], f["gpu_seconds"]
        gpu = f"{g['mean']:.0f}" if g["mean"] else "- (CPU)"
        lines.append(f"| {name} | {wall} | {trials} | {best} | {w['mean']:.4f} ± {w['std'] or 0:.4f} | {gpu} |")
    lines += ["", "Best recipes:", ""]
    for name, f in summary["final"].items():
        lines.append(f"- {name}: `{json.dumps(f['params'], sort_keys=True)}`")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, required=True, help="tune YAML (its space, proxy, pbt and base)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--budget", type=float, default=150.0, help="seconds each tuner may start trials in")
    p.add_argument("--workers", type=int, default=2, help="processes per tuner")
    p.add_argument("--final-epochs", type=int, default=None, help="default: the base's train.epochs")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--final-concurrency", type=int, default=12)
    p.add_argument("--metric", choices=["wer", "dev_loss"], default=None,
                   help="the tuners' proxy metric (default: the config's); dev_loss still ranks models that "
                        "a short proxy leaves at dev WER 1.0")
    p.add_argument("--machine", default=os.environ.get("MACHINE", "this machine"))
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    tune, config = _template(a.config)
    base = config.base.to_dict()
    if a.metric:
        tune["metric"] = a.metric
    t0 = time.monotonic()
    tuners = run_tuners(tune, base, a.out, methods=a.methods, budget=a.budget, workers=a.workers)
    t1 = time.monotonic()
    recipes = {"default": {}, **{m: r["best_params"] for m, r in tuners.items()}}
    epochs = a.final_epochs or config.base.train.epochs
    finals = run_finals(config, a.out, recipes, epochs=epochs, seeds=a.seeds, concurrency=a.final_concurrency)
    summary = {"config": str(a.config), "machine": a.machine, "budget_seconds": a.budget, "workers": a.workers,
               "final_epochs": epochs, "seeds": a.seeds, "chunk_ms": config.base.export_chunk_ms,
               "dataset": config.base.dataset, "metric": tune.get("metric", "wer"), "tuners": tuners, "final": finals,
               "phase_seconds": {"tune": t1 - t0, "final": time.monotonic() - t1}}
    (a.out / "compare.json").write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")
    (a.out / "compare.md").write_text(markdown(summary), encoding="utf-8")
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
