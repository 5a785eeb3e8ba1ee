"""``edgetune corpus --preset smoke [--seed N] [--out DIR] [--workers N] [--validate]``.

Builds (or loads from cache) the built-in eSpeak corpus and prints the split sizes and
hours. Only parses arguments and calls :func:`edgetune.data.build_corpus`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    from edgetune.data._corpus import PRESETS

    p = subparsers.add_parser(
        "corpus", help="build the built-in synthesized speech corpus (eSpeak NG, no downloads)",
        description="Synthesize English phone commands with many eSpeak NG voices into WAV files and "
                    "train/dev/test JSONL manifests. Speaker-independent splits, deterministic for a seed, "
                    "cached: running it again loads the cache or finishes an interrupted build.")
    p.add_argument("--preset", default="smoke", choices=sorted(PRESETS),
                   help="tiny: 72 utterances; smoke: 420 (~14 min of audio); full: >= 50 h of training audio")
    p.add_argument("--seed", type=int, default=0, help="seed of texts, voices and splits (default 0)")
    p.add_argument("--out", type=Path, default=None,
                   help="corpus folder (default $EDGETUNE_CACHE/corpus/<preset>-seed<seed>, "
                        "$EDGETUNE_CACHE defaulting to ~/.cache/edgetune)")
    p.add_argument("--workers", type=int, default=None, help="parallel synthesis processes (default: CPU count)")
    p.add_argument("--validate", action="store_true", help="decode and check every file after building")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgetune.data import SPLITS, build_corpus, validate_dataset
    from edgetune.errors import ConfigError

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    splits = build_corpus(args.preset, cache_dir=args.out, seed=args.seed, progress=not args.no_progress,
                          workers=args.workers)
    if args.validate:
        validate_dataset(splits)
    print(f"corpus {splits.name} (seed {args.seed}) in {splits.root}")
    for split in SPLITS:
        utts = splits.split(split)
        groups = len({u.group for u in utts})
        print(f"  {split:<5} {len(utts):>7} utterances  {splits.hours(split):8.2f} h  {groups} groups")
    print(f"  total {sum(len(splits.split(s)) for s in SPLITS):>7} utterances  {splits.hours():8.2f} h")
    return 0
