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

    outcomes, warnings = run_check(args.results, args.budgets, args.baseline, tuple(args.aa) if args.aa else None)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    width = max((len(o.name) for o in outcomes), default=10)
    for o in outcomes:
        print(f"{o.status.upper():<5} {o.name:<{width}}  {o.message}")
    failed = sum(o.status == "fail" for o in outcomes)
    print(f"{len(outcomes)} checks: {len(outcomes) - failed} passed or skipped, {failed} failed")
    if args.junit:
        from edgetune.bench._check import load_results

        target = load_results(args.results).target or "unknown-target"
        write_junit(args.junit, outcomes, classname=f"edgetune.check.{target}", properties={"results": args.results, "budgets": args.budgets,
                                                      "baseline": args.baseline})
        print(f"wrote {args.junit}")
    return 1 if failed else 0
