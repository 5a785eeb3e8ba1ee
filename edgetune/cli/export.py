"""``edgetune export --study-dir DIR --trial N --out export/NAME.onnx``: ship one trial's model.

Only parses arguments and calls :func:`edgetune.card.export_trial`, which verifies the
artifact's sha256 before copying and writes a model card (``NAME.card.json``, ``NAME.md``);
``--format sherpa-onnx --out DIR`` calls :func:`edgetune.card.export_trial_sherpa`.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    from edgetune.export.sherpa import LAYERNORM_MODES, MODEL_TYPES

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
    p.add_argument("--format", dest="fmt", choices=("onnx", "sherpa-onnx"), default="onnx",
                   help="onnx (default): the edgetune file; sherpa-onnx: --out is a folder that gets the edgetune "
                        "file and card plus sherpa-onnx's model.onnx, tokens.txt and a how-to")
    p.add_argument("--type", dest="model_type", choices=MODEL_TYPES, default=MODEL_TYPES[0],
                   help="with --format sherpa-onnx: the sherpa-onnx model type (default zipformer2_ctc)")
    p.add_argument("--layernorm", choices=LAYERNORM_MODES, default=LAYERNORM_MODES[0],
                   help="with --format sherpa-onnx: primitive writes LayerNormalization in primitive ops "
                        "(the same logits in every ONNX Runtime; see `edgetune ship --help`)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgetune.card import export_trial

    if args.fmt == "sherpa-onnx":
        from edgetune.card import export_trial_sherpa

        done, shipped = export_trial_sherpa(args.study_dir, args.trial, args.out, storage=args.storage,
                                            model_type=args.model_type, layernorm=args.layernorm)
        print(f"exported trial {args.trial} -> {shipped.model} + {shipped.tokens} (sherpa-onnx {args.model_type}, "
              f"from {done.onnx}); how-to: {shipped.howto}. Check it in sherpa-onnx: "
              f"edgetune ship {done.onnx} --out {args.out}/check --dataset DATASET")
    else:
        done = export_trial(args.study_dir, args.trial, args.out, storage=args.storage)
        print(f"exported trial {args.trial} -> {done.onnx} (sha256 {done.sha256[:16]}...)")
    card = done.card
    print(f"model card: {done.card_json}, {done.card_md}")
    if not card["pareto"]["on_front"]:
        print("note: this trial is not on the Pareto front", file=sys.stderr)
    if not card["pareto"]["feasible"]:
        print("note: this trial is over a budget", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    from edgetune.cli import main

    sys.exit(main(["export", *sys.argv[1:]]))
