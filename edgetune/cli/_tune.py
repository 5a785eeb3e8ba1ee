"""``edgetune base tune --config base-tune.yaml [--study-dir DIR] [--storage URL] [--workers K] [--pbt]``.

Only parses arguments and calls :mod:`edgetune.base._tune` / :mod:`edgetune.base._pbt`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register_tune(sub) -> None:
    t = sub.add_parser("tune", help="tune the base's training recipe (Optuna study with pruning, or --pbt)",
                       description="Single-objective Optuna study of the base's training knobs at a proxy fidelity "
                                   "(data fraction, epochs) with Optuna's pruners; the best is retrained with "
                                   "several seeds (mean ± std). Resumes from the study directory.")
    t.add_argument("--config", type=Path, required=True, help="tune YAML (see configs/base-tune-5m.yaml)")
    t.add_argument("--study-dir", type=Path, default=None, help="study directory (default runs/<study_name>)")
    t.add_argument("--storage", default=None, help="Optuna storage URL (postgresql://...) instead of the journal file")
    t.add_argument("--workers", type=int, default=1, metavar="K",
                   help="K processes: K workers on one study, or K concurrent population members with --pbt")
    t.add_argument("--n-trials", type=int, default=None, help="override n_trials (extend a study)")
    t.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="start no trial (no PBT round) after SECONDS (one always runs); a rerun continues")
    t.add_argument("--pbt", action="store_true", help="population-based training instead of a study")
    t.add_argument("--no-final", action="store_true", help="skip the final retrain of the best configuration")
    t.add_argument("--helper", action="store_true", help=argparse.SUPPRESS)
    t.set_defaults(func=run_tune_cli)


def run_tune_cli(args: argparse.Namespace) -> int:
    from edgetune.base._tune import finish, optimize
    from edgetune.base._tune_config import load_tune_config

    config = load_tune_config(args.config)
    root = args.study_dir or Path("runs") / config.study_name
    storage = args.storage or config.storage
    if args.pbt:
        from edgetune.base._pbt import run_pbt

        result = run_pbt(config, root, workers=args.workers, time_budget=args.time_budget)
        best = result["best"]
        print(f"pbt {root}: best member {best['member']} dev {config.metric} {best['value']:.4f} {best['params']}")
        return 0
    if args.helper:
        optimize(config, root, storage=storage, n_trials=args.n_trials, time_budget=args.time_budget,
                 log=lambda *_: None)
        return 0
    pool = None
    if args.workers > 1:
        from edgetune.search._workers import WorkerPool, plan

        cmd = [sys.executable, "-m", "edgetune", "base", "tune", "--config", str(Path(args.config).resolve()),
               "--study-dir", str(Path(root).resolve()), "--helper"]
        if storage:
            cmd += ["--storage", storage]
        if args.n_trials:
            cmd += ["--n-trials", str(args.n_trials)]
        if args.time_budget is not None:
            cmd += ["--time-budget", str(args.time_budget)]
        pool = WorkerPool(plan(args.workers, []), cmd, Path(root) / "workers").start()
    try:
        study = optimize(config, root, storage=storage, n_trials=args.n_trials, time_budget=args.time_budget)
        if pool is not None:
            failed = pool.wait()
            for index, rc, log in failed:
                print(f"error: worker {index} exited with code {rc}; see {log}", file=sys.stderr)
    finally:
        if pool is not None:
            pool.stop()
    summary = finish(config, root, study, final=not args.no_final)
    best = summary["best"]
    print(f"tune {root}: best trial {best['number']} dev {config.metric} {best['value']:.4f} {best['params']}")
    final = summary.get("final")
    if final:
        d, t = final["dev_wer"], final["test_wer"]
        print(f"retrained x{d['n']}: dev WER {d['mean']:.4f} ± {d['std'] or 0:.4f}, "
              f"test WER {t['mean']:.4f} ± {t['std'] or 0:.4f} (fp32 ONNX)")
    print(f"report: {Path(root) / 'report' / 'tune.html'}")
    return 0
