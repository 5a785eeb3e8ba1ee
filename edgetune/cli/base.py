"""``edgetune base train --config base.yaml --out DIR``: train (or resume) a base model; ``base tune``: tune its recipe.

Only parses arguments and calls :func:`edgetune.base.train_base`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "base", help="train the base model every trial is derived from",
        description="Train a streaming CTC base once (dynamic chunks, Kaldi fbank, fp32 weights, bf16 on CUDA). "
                    "Checkpoints after every epoch: the same command resumes after a kill.")
    sub = p.add_subparsers(dest="base_command", metavar="ACTION")
    sub.required = True
    t = sub.add_parser("train", help="train or resume a base into a base directory")
    t.add_argument("--config", type=Path, required=True, help="base YAML (see configs/base-demo.yaml)")
    t.add_argument("--out", type=Path, default=None, help="base directory (default runs/base-<name>)")
    t.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    t.add_argument("--device", default=None, help="override train.device (auto, cpu, cuda, cuda:N)")
    t.add_argument("--max-minutes", type=float, default=None,
                   help="pause after the epoch that crosses this wall time (exit 75); the same command resumes")
    t.add_argument("--finalize", action="store_true",
                   help="stop training: make the base from the latest checkpoint now (card says complete: false); "
                        "running again without it continues the training")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.set_defaults(func=run_train)
    from edgetune.cli._tune import register_tune

    register_tune(sub)


def run_train(args: argparse.Namespace) -> int:
    import dataclasses

    from edgetune.base import load_base_config, train_base
    from edgetune.base._model import TrainingPaused

    config = load_base_config(str(args.config))
    train = config.train
    if args.epochs is not None:
        train = dataclasses.replace(train, epochs=args.epochs)
    if args.device is not None:
        train = dataclasses.replace(train, device=args.device)
    config = dataclasses.replace(config, train=train)
    out = args.out or Path("runs") / f"base-{config.name}"
    command = "edgetune " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    try:
        base = train_base(config, out, progress=not args.no_progress, command=command, max_minutes=args.max_minutes,
                          finalize=args.finalize)
    except TrainingPaused as exc:
        print(str(exc))
        return 75  # EX_TEMPFAIL: not finished, nothing lost
    wer = ", ".join(f"{c} ms: test {v['test']:.4f}" for c, v in sorted(base.card["wer"].items(), key=lambda kv: int(kv[0])))
    print(f"base {base.path}: {base.card['params']:,} parameters; fp32 ONNX WER {wer}")
    return 0
