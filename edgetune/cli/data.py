"""``edgetune data check DIR``: list every problem of a dataset folder, without training.

Only parses arguments and calls :func:`edgetune.data.check_dataset`.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="check a dataset folder (every bad file, with a summary)")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True
    c = sub.add_parser(
        "check", help="list every problem of a dataset folder (file and line) and summarise it",
        description="Read the train/dev/test manifests (or a LibriSpeech layout), decode every audio file and "
                    "list every problem with its file and line: missing, unreadable, empty, wrong duration, "
                    "too short for CTC, no transcript, bad manifest lines, audio shared between splits. Then "
                    "a summary per split: utterances, hours, groups, sample rates, durations. The same checks "
                    "run before `candidate` and `search` train on a dataset folder.",
        epilog="Exit codes: 0 usable (warnings may be printed), 1 errors found, 2 not a dataset.")
    c.add_argument("dataset", metavar="DIR", help="a dataset folder (manifests or LibriSpeech) or a preset name")
    c.add_argument("--sample-rate", type=int, default=16000, help="rate the model reads (default 16000)")
    c.add_argument("--ctc-frame-ms", type=float, default=40.0,
                   help="milliseconds per CTC output frame, for the too-short check (default 40: conformer_lite)")
    c.add_argument("--json", default=None, metavar="FILE", help="also write the findings and summary as JSON")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from edgetune.data import check_dataset

    report = check_dataset(args.dataset, sample_rate=args.sample_rate, ctc_frame_ms=args.ctc_frame_ms)
    print(report.text())
    if args.json:
        from pathlib import Path

        from edgetune._io import atomic_write_text

        atomic_write_text(Path(args.json), json.dumps(dataclasses.asdict(report), indent=2) + "\n")
    if not report.ok:
        print(f"edgetune data check: {len(report.errors)} error(s) in {report.root}", file=sys.stderr)
        return 1
    return 0
