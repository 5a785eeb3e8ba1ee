"""``edgetune export --study-dir DIR --trial N --out export/NAME.onnx``: ship one trial's model.

Only parses arguments and calls :func:`edgetune.report.export_trial`, which verifies the
artifact's sha256 before copying and writes a model card (``NAME.card.json``, ``NAME.md``).
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="copy a trial's model out of a study, with a model card",
        description="Copy trial N's ONNX model (after checking its sha256 against the one recorded when it "
                    "was measured) and write a model card beside it: knobs, WER, latency percentiles and "
                    "the host they were measured on, size, and how to run it.",
        epilog="Exit codes: 0 ok, 2 unknown/failed trial, missing artifact or sha256 mismatch.")
    p.add_argument("--study-dir", required=True, help="the directory `edgetune search` wrote")
    p.add_argument("--trial", type=int, required=True, help="trial number (see report/pareto.md)")
    p.add_argument("--out", required=True, help="destination .onnx, e.g. export/phone.onnx")
    p.add_argument("--storage", default=None, help="Optuna storage URL, if not the one saved in study.yaml")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgetune.report import export_trial

    done = export_trial(args.study_dir, args.trial, args.out, storage=args.storage)
    card = done.card
    print(f"exported trial {args.trial} -> {done.onnx} (sha256 {done.sha256[:16]}...)")
    print(f"model card: {done.card_json}, {done.card_md}")
    if not card["pareto"]["on_front"]:
        print("note: this trial is not on the Pareto front", file=sys.stderr)
    if not card["pareto"]["feasible"]:
        print("note: this trial is over a budget", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    from edgetune.cli import main

    sys.exit(main(["export", *sys.argv[1:]]))
