"""``edgetune search --config study.yaml [--study-dir DIR] [--storage URL]``: run or resume a study.

Only parses arguments and calls :func:`edgetune.search.run_study`, then writes the report
(:func:`edgetune.report.build_report`) into ``<study dir>/report/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "search", help="run (or resume) a study described by one YAML config",
        description="Run an Optuna study over bits, sparsity, depth multiplier and chunk size; every trial "
                    "trains, exports and measures one streaming ONNX model. Running the same command again "
                    "resumes the study: finished trials are kept, interrupted ones are retried.",
        epilog="Exit codes: 0 ok, 2 invalid config, incompatible study directory or storage error.")
    p.add_argument("--config", required=True, help="study config (YAML), e.g. configs/smoke.yaml")
    p.add_argument("--study-dir", default=None,
                   help="where the study lives: study.yaml, journal.log, trials/<n>/model.onnx, report/ "
                        "(default: studies/<study_name>)")
    p.add_argument("--storage", default=None,
                   help="Optuna storage URL (e.g. postgresql://user@host/db) instead of the journal file "
                        "in the study directory; overrides the config's storage")
    p.add_argument("--n-trials", type=int, default=None, help="override n_trials (raise it to extend a study)")
    p.add_argument("--no-report", action="store_true", help="do not write <study dir>/report/ at the end")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--simulate", action="store_true",
                   help="dry run: no training; synthetic results from a simple model of the knobs, to try a "
                        "config, the resume logic and the report in seconds (the study is marked simulated)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgetune.search import SimulatedRunner, load_config, run_study

    config = load_config(args.config)
    changes = {}
    if args.storage is not None:
        changes["storage"] = args.storage
    if args.n_trials is not None:
        changes["n_trials"] = args.n_trials
    if changes:
        config = config.from_dict({**config.to_dict(), **changes})  # validated like the file
    study_dir = Path(args.study_dir) if args.study_dir else Path("studies") / config.study_name
    runner = SimulatedRunner(seed=config.seed) if args.simulate else None
    summary = run_study(config, study_dir, runner=runner, progress=not args.quiet)
    print(
        f"study {summary.study_name!r}: {summary.finished}/{summary.n_trials} trials finished "
        f"({summary.complete} complete, {summary.failed} failed, {summary.interrupted} interrupted"
        + (f", {summary.running_elsewhere} running elsewhere" if summary.running_elsewhere else "")
        + f"); front: {', '.join(map(str, summary.front)) or 'empty'}"
    )
    if not args.no_report:
        from edgetune.report import build_report

        report = build_report(study_dir, config=config)
        print(f"report: {report / 'index.html'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from edgetune.cli import main

    sys.exit(main(["search", *sys.argv[1:]]))
