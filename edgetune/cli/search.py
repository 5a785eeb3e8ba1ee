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
        epilog="Exit codes: 0 ok, 1 every trial failed, 2 invalid config, incompatible study directory, "
               "storage or infrastructure error (disk full: the interrupted trial is retried on resume).")
    p.add_argument("--config", required=True, help="study config (YAML), e.g. configs/smoke.yaml")
    p.add_argument("--study-dir", default=None,
                   help="where the study lives: study.yaml, journal.log, trials/<n>/model.onnx, report/ "
                        "(default: studies/<study_name>)")
    p.add_argument("--storage", default=None,
                   help="Optuna storage URL (e.g. postgresql://user@host/db) instead of the journal file "
                        "in the study directory; overrides the config's storage")
    p.add_argument("--n-trials", type=int, default=None, help="override n_trials (raise it to extend a study)")
    p.add_argument("--workers", type=int, default=1, metavar="K",
                   help="run K worker processes on this study at once (each on its own CPU cores; with --gpus, "
                        "spread over those GPUs, several per GPU when K exceeds them). Default 1")
    p.add_argument("--gpus", default=None, metavar="LIST",
                   help="GPU indices for the workers, e.g. 0,1 or 'all': worker i trains on GPU i mod len(LIST)")
    p.add_argument("--no-report", action="store_true", help="do not write <study dir>/report/ at the end")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--simulate", nargs="?", type=float, const=0.0, default=None, metavar="SECONDS_PER_EPOCH",
                   help="dry run: no training; synthetic results from a simple model of the knobs, to try a "
                        "config, the resume logic, workers and the report in seconds (the study is marked "
                        "simulated). An optional value sleeps that long per simulated epoch")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgetune.search import SimulatedRunner, load_config, run_study

    config = load_config(args.config)
    _check_inputs(config, args.config)
    changes = {}
    if args.storage is not None:
        changes["storage"] = args.storage
    if args.n_trials is not None:
        changes["n_trials"] = args.n_trials
    if changes:
        config = config.from_dict({**config.to_dict(), **changes})  # validated like the file
    study_dir = Path(args.study_dir) if args.study_dir else Path("studies") / config.study_name
    runner = SimulatedRunner(seed=config.seed, epoch_delay_s=args.simulate) if args.simulate is not None else None
    if args.workers > 1 or args.gpus:
        summary = _run_workers(args, config, study_dir, runner)
        if summary is None:
            return 1
    else:
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
    if summary.all_failed:
        print(f"error: every trial failed ({summary.failed} of {summary.finished}); the first: "
              f"{summary.first_failure[:500]}. Fix that cause (see {study_dir / 'report'} or "
              f"`edgetune report --study-dir {study_dir}`), then use a new --study-dir", file=sys.stderr)
        return 1
    return 0


def _check_inputs(config, source: str) -> None:
    """Family, dataset and reachable budgets, before anything is created; the error names the file."""
    from edgetune.search._config import check_config_inputs
    from edgetune.search._space import KeyConfigError

    try:
        check_config_inputs(config)
    except KeyConfigError as exc:
        raise KeyConfigError(exc.path, f"{exc.detail} (in {source})") from None


def _run_workers(args: argparse.Namespace, config, study_dir: Path, runner):
    """``--workers K [--gpus]``: :func:`edgetune.search.run_workers`; None when a helper failed (each named)."""
    from edgetune.search import run_workers

    done = run_workers(config, study_dir, args.workers, config_path=args.config, gpus=args.gpus,
                       storage=args.storage, n_trials=args.n_trials, simulate=args.simulate, runner=runner,
                       progress=not args.quiet, echo=lambda msg: print(msg, file=sys.stderr))
    for index, rc, log in done.failed:
        print(f"error: worker {index} exited with code {rc}; see {log}", file=sys.stderr)
    return None if done.failed else done.summary


if __name__ == "__main__":  # pragma: no cover
    from edgetune.cli import main

    sys.exit(main(["search", *sys.argv[1:]]))
