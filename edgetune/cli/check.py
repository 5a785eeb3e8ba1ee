"""``edgetune check --results out.json --budgets budgets.yaml [--baseline base.json] [--junit report.xml]``.

Only parses arguments and calls :mod:`edgetune.bench._check`. Exit codes: 0 every check
passed, 1 a budget was exceeded or a regression was found, 2 usage or infrastructure error
(missing file, unknown budget key, results without samples).
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "check", help="check bench results against budgets and a baseline (CI gate)",
        description="Check a bench JSON or candidate result.json against per-target budgets, and against a "
                    "baseline with a seeded bootstrap test plus a noise floor.",
        epilog="Exit codes: 0 pass, 1 budget exceeded or regression, 2 usage or infrastructure error. "
               "See docs/ci-budgets.md.")
    p.add_argument("--results", required=True, help="bench JSON (edgetune bench --json) or candidate result.json")
    p.add_argument("--budgets", default=None, help="budgets YAML (per target: p90_ms, p99_ms, rtf, size_bytes, wer, ...)")
    p.add_argument("--baseline", default=None, help="bench JSON of the baseline model, same target")
    p.add_argument("--aa", nargs=2, default=None, metavar=("A1.json", "A2.json"),
                   help="an A/A pair (one model benched twice) to measure the noise floor from")
    p.add_argument("--junit", default=None, metavar="REPORT.xml", help="write a JUnit XML report here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgetune.bench._check import run_check, write_junit

    report = run_check(args.results, args.budgets, args.baseline, tuple(args.aa) if args.aa else None)
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    width = max((len(o.name) for o in report.outcomes), default=10)
    for o in report.outcomes:
        print(f"{o.status.upper():<5} {o.name:<{width}}  {o.message}")
    n = len(report.outcomes)
    print(f"{n} checks: {n - report.failed} passed or skipped, {report.failed} failed")
    if args.junit:
        write_junit(args.junit, report.outcomes, classname=f"edgetune.check.{report.target or 'unknown'}",
                    properties={"results": args.results, "budgets": args.budgets, "baseline": args.baseline,
                                "target": report.target})
        print(f"wrote {args.junit}")
    return 1 if report.failed else 0
