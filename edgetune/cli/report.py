"""``edgetune report --study-dir DIR``: write ``DIR/report/`` (index.html, pareto.md, trials.csv,
pareto.png). Only parses arguments and calls :func:`edgetune.report.build_report`."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="write a study's report (offline HTML, Markdown, CSV, PNG)",
        description="Build <study dir>/report/: the Pareto front, hypervolume over trials, parameter "
                    "importance, the front as a table and failures by reason. Safe while a study runs.",
        epilog="Exit codes: 0 ok, 2 not a study directory or storage error.")
    p.add_argument("--study-dir", required=True, help="the directory `edgetune search` wrote")
    p.add_argument("--storage", default=None, help="Optuna storage URL, if not the one saved in study.yaml")
    p.add_argument("--out", default=None, help="write the report here instead of <study dir>/report")
    p.add_argument("--static", action="store_true",
                   help="index.html without JavaScript (KBs instead of MBs; Pareto plot as pareto.png), "
                        "for a report to commit or mail")
    p.add_argument("--format", action="append", default=None, dest="formats", metavar="NAME",
                   help="write only this format (repeatable): html, markdown, csv, png or one registered with "
                        "edgetune.report.register_renderer (default: all four)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgetune.report import build_report
    from edgetune.report._renderers import report_files

    formats = getattr(args, "formats", None)
    out = build_report(args.study_dir, storage=args.storage, out_dir=args.out, interactive=not args.static,
                       formats=formats)
    first, *rest = report_files(formats)
    print(f"report: {out / first}")
    if rest:
        print(f"        {', '.join(str(out / name) for name in rest)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from edgetune.cli import main

    sys.exit(main(["report", *sys.argv[1:]]))
