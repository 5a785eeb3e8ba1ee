"""``edgetune candidate --bits 8 --sparsity 0.5 --depth-multiplier 0.5 --chunk-ms 320 --out DIR``:
train, export and measure one candidate (:func:`edgetune.pipeline.run_candidate`).

Only parses arguments and calls the library; bad knob values come back as the ConfigError
message (exit code 2).
"""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "candidate", help="train, export and measure one candidate (knobs -> model.onnx + result.json)",
        description="Train one candidate with QAT and pruning, export it to a streaming ONNX file, and "
                    "measure WER (on the file, in ONNX Runtime), latency and size.")
    k = p.add_argument_group("knobs")
    k.add_argument("--bits", type=int, default=8, help="weight width: 4, 8 (int, int8 activations), 16 (fp16), 32")
    k.add_argument("--sparsity", type=float, default=0.0, help="structured channel pruning ratio, 0-0.9")
    k.add_argument("--depth-multiplier", type=float, default=1.0, help="width multiplier (default 1.0)")
    k.add_argument("--chunk-ms", type=int, default=320, help="streaming chunk, a multiple of 40 ms")
    k.add_argument("--observer", default="moving_average", help="QAT range observer: minmax | moving_average")
    k.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    k.add_argument("--no-specaugment", action="store_true", help="train without SpecAugment")
    k.add_argument("--prune-schedule", default="oneshot", help="oneshot | gradual")
    d = p.add_mutually_exclusive_group()
    d.add_argument("--preset", choices=["tiny", "smoke", "grid", "base", "full"], default=None,
                   help="built-in eSpeak corpus (default smoke)")
    d.add_argument("--dataset", default=None, metavar="PATH", help="a dataset folder (manifests or LibriSpeech)")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=None, help="passes over the training split (default 8)")
    t.add_argument("--batch-size", type=int, default=None, help="utterances per batch (default 16)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    t.add_argument("--family", default="conformer_lite", help="model family (default conformer_lite)")
    t.add_argument("--model-config", default=None, metavar="JSON",
                   help='overrides of the family config, e.g. \'{"d_model": 192, "n_layers": 4}\'')
    t.add_argument("--base", default=None, metavar="DIR",
                   help="derive the candidate from this base directory (e.g. models/demo): prune, QAT, distil")
    t.add_argument("--init", choices=["base", "scratch"], default="base",
                   help="with --base: derive from it (default) or train from scratch at its architecture")
    t.add_argument("--distill", type=float, default=0.5, help="with --base: KL weight of distillation (0 = off)")
    b = p.add_argument_group("benchmark")
    b.add_argument("--target", default="local", help="where latency is measured (local, ssh://, adb://)")
    b.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads when timing")
    b.add_argument("--runs", type=int, default=200, help="timed chunk steps")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (model.onnx, result.json)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgetune.errors import ConfigError
    from edgetune.knobs import Knobs, TrainSettings
    from edgetune.pipeline import run_candidate

    knobs = Knobs(bits=args.bits, sparsity=args.sparsity, depth_multiplier=args.depth_multiplier,
                  chunk_ms=args.chunk_ms, observer=args.observer, lr=args.lr,
                  specaugment=not args.no_specaugment, prune_schedule=args.prune_schedule)
    settings = {"seed": args.seed, "device": args.device}
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    if args.batch_size is not None:
        settings["batch_size"] = args.batch_size
    train = TrainSettings(**settings)
    overrides = None
    if args.model_config:
        try:
            overrides = json.loads(args.model_config)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--model-config must be a JSON object, got {args.model_config!r} ({exc})") from None
        if not isinstance(overrides, dict):
            raise ConfigError(f"--model-config must be a JSON object, got {args.model_config!r}")
    dataset = args.dataset or args.preset or "smoke"
    result = run_candidate(knobs, Path(args.out), dataset=dataset, train=train, target=args.target,
                           bench_threads=args.threads, bench_runs=args.runs, family=args.family,
                           progress=not args.quiet, model_config=overrides, base=args.base, init=args.init,
                           distill_weight=args.distill)
    lat = result["latency_ms"]
    print(f"WER {result['wer']:.3f} (PyTorch {result['wer_torch']:.3f}, worst group {result['worst_group_wer']:.3f})"
          f" | latency/chunk p50 {lat['p50']:.3f} ms p90 {lat['p90']:.3f} ms | RTF {result['rtf']:.4f}"
          f" | {result['size_bytes']:,} B | parity {result['parity']['identical_fraction']:.2f}"
          f" | params {result['params']:,} | trained {result['train_seconds']:.0f} s on {result['device']}")
    if result.get("wer_base") is not None:
        print(f"from base {result['base']['name']}: base WER {result['wer_base']:.3f} | quantization cost "
              f"{result['quant_cost']:+.3f} | export error {result['export_error']:+.3f}")
    print(f"wrote {Path(args.out) / 'model.onnx'} and {Path(args.out) / 'result.json'}")
    return 0
