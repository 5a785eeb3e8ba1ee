"""``edgetune check --results out.json --budgets budgets.yaml [--baseline base.json] [--junit report.xml]``.

Only parses arguments and calls :mod:`edgetune.bench._check`. Exit codes: 0 every check
passed, 1 a budget was exceeded or a regression was found, 2 usage or infrastructure error
(missing file, unknown budget key, results without samples), 3 nothing failed but a latency
gate was too noisy to decide (the host cannot detect the slowdown it is asked to catch).
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "check", help="check bench results against budgets and a baseline (CI gate)",
        description="Check a bench JSON or candidate result.json against per-target budgets, and against a "
                    "baseline with a seeded bootstrap test plus a noise floor.",
        epilog="Exit codes: 0 pass, 1 budget exceeded or regression, 2 usage or infrastructure error, "
               "3 too noisy to gate. See docs/ci-budgets.md.")
    p.add_argument("--results", required=True, help="bench JSON (edgetune bench --json) or candidate result.json")
    p.add_argument("--budgets", default=None,
                   help="budgets YAML (per target: p90_ms, p99_ms, rtf, size_bytes, wer, wer_delta, ...)")
    p.add_argument("--baseline", nargs="+", default=None, metavar="BASE.json",
                   help="bench JSON(s) of the baseline model, same target: one file from the same job "
                        "(--baseline-model), or stored runs (bench --rounds N --reference; several files pool)")
    p.add_argument("--history", default=None, metavar="DIR",
                   help="folder of earlier main-branch bench JSONs: change-point detection, then the results "
                        "against the current regime")
    p.add_argument("--aa", nargs=2, default=None, metavar=("A1.json", "A2.json"),
                   help="an A/A pair (one model benched twice) to measure the noise floor from")
    p.add_argument("--junit", default=None, metavar="REPORT.xml", help="write a JUnit XML report here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgetune.bench._check import run_check, write_junit

    report = run_check(args.results, args.budgets, args.baseline, tuple(args.aa) if args.aa else None,
                       args.history)
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    width = max((len(o.name) for o in report.outcomes), default=10)
    for o in report.outcomes:
        print(f"{o.status.upper():<5} {o.name:<{width}}  {o.message}")
    st = report.stability or {}
    if st:
        print(f"stability of the results: {st['score']:.0f}/100 ({st['rating']}), CV "
              f"{'n/a' if st['cv_pct'] is None else format(st['cv_pct'], '.1f') + '%'} over {st['runs']} run(s), "
              f"p99/p50 {st['p99_p50']:.2f}")
    if report.device_wer:
        w = report.device_wer
        f = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
        print(f"WER on the device: {f(w['wer'])}, on the host: {f(w['wer_host'])} (same file and features); "
              f"{w['transcripts_differ']} of {w['utterances']} transcripts differ")
    n = len(report.outcomes)
    print(f"{n} checks: {n - report.failed - report.noisy} passed or skipped, {report.failed} failed, "
          f"{report.noisy} too noisy to gate")
    if args.junit:
        props = {"results": args.results, "budgets": args.budgets,
                 "baseline": " ".join(args.baseline) if args.baseline else None, "history": args.history,
                 "target": report.target, "gate_status": ("fail" if report.failed else
                                                          "noisy" if report.noisy else "pass")}
        props.update({f"stability_{k}": v for k, v in st.items()})
        props.update({f"device_wer_{k}": v for k, v in (report.device_wer or {}).items()})
        write_junit(args.junit, report.outcomes, classname=f"edgetune.check.{report.target or 'unknown'}",
                    properties=props)
        print(f"wrote {args.junit}")
    return report.exit_code
