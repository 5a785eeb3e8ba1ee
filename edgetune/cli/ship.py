"""``edgetune ship MODEL.onnx --out DIR [--type zipformer2_ctc|wenet_ctc] [--check AUDIO...|--dataset NAME]``.

Only parses arguments and calls :func:`edgetune.ship.ship_check`: writes ``DIR/model.onnx``
(sherpa-onnx ``zipformer2_ctc`` layout by default, ``wenet_ctc`` with ``--type``), ``DIR/tokens.txt``, ``DIR/README.md`` (how to run it)
and ``DIR/ship.json``, after decoding the audio with the real sherpa-onnx and comparing the
CTC tokens with edgetune's own streaming runner. Without audio it decodes one second of
silence: proof that sherpa-onnx loads and runs the file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgetune.errors import DataError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def register(subparsers) -> None:
    from edgetune.export.sherpa import LAYERNORM_MODES, MODEL_TYPES

    p = subparsers.add_parser(
        "ship", help="export a model for sherpa-onnx and check its transcripts there",
        description="Rewrite an edgetune streaming ONNX file into a sherpa-onnx streaming CTC layout "
                    "(zipformer2_ctc by default, or wenet_ctc; same weights), write tokens.txt and a how-to, decode audio with the real sherpa-onnx "
                    "(in a subprocess) and compare the transcripts with edgetune's runner.",
        epilog="Exit codes: 0 transcripts identical (>= --min-identical), 1 they are not, "
               "2 the model cannot be exported or sherpa-onnx cannot run it.")
    p.add_argument("model", nargs="?", default=None,
                   help="an edgetune .onnx file (from `edgetune candidate`, a study or `edgetune export`)")
    p.add_argument("--front", metavar="STUDY_DIR", default=None,
                   help="instead of MODEL: ship every model on this study's front and decode its test split")
    p.add_argument("--out", required=True, help="output folder for model.onnx, tokens.txt, README.md, ship.json")
    p.add_argument("--type", dest="model_type", choices=MODEL_TYPES, default=MODEL_TYPES[0],
                   help="sherpa-onnx model type (default zipformer2_ctc: every sherpa binding, batched; "
                        "wenet_ctc: Python and C++ only, one stream per model run)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--check", nargs="+", metavar="AUDIO", default=None,
                     help="audio files or folders of .wav/.flac/.ogg files to decode with both engines")
    src.add_argument("--dataset", default=None,
                     help="decode the test split of this dataset (preset name such as smoke, or a folder)")
    p.add_argument("--limit", type=int, default=None, help="decode at most this many utterances")
    p.add_argument("--min-identical", type=float, default=0.99,
                   help="fraction of utterances whose tokens must be identical (default 0.99)")
    p.add_argument("--threads", type=int, default=1, help="threads for both engines (default 1)")
    p.add_argument("--batch", type=int, default=4,
                   help="also decode this many streams per sherpa decode_streams call and require the "
                        "one-stream tokens (default 4; 1: one stream at a time only)")
    p.add_argument("--layernorm", choices=LAYERNORM_MODES, default=LAYERNORM_MODES[0],
                   help="fused (default): ship the study's file as it is; primitive: rewrite LayerNormalization "
                        "in primitive ops first, so the logits are the same in every ONNX Runtime version "
                        "(sherpa-onnx bundles its own; costs chunk latency, see the README)")
    p.add_argument("--json", action="store_true", help="print the whole ship.json result")
    p.set_defaults(func=run)


def _audio_files(items: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise DataError(f"folder {item!r} holds no {'/'.join(AUDIO_SUFFIXES)} files")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"audio {item!r} is neither a file nor a folder")
    return files


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from edgetune.ship import ship_check

    if (args.model is None) == (args.front is None):
        raise DataError("give either MODEL or --front STUDY_DIR")
    if args.front:
        from edgetune.ship._front import ship_front

        summary = ship_front(args.front, args.out, limit=args.limit, min_identical=args.min_identical,
                             batch=args.batch, model_type=args.model_type, layernorm=args.layernorm)
        print(f"front of {summary['study']}: {sum(r['passed'] for r in summary['models'])}/{len(summary['models'])} "
              f"models pass in sherpa-onnx; wrote {Path(args.out) / 'ship-front.json'}")
        return 0 if summary["all_passed"] else 1
    if args.check:
        audio: list = _audio_files(args.check)
    elif args.dataset:
        from edgetune.data import load_dataset

        audio = list(load_dataset(args.dataset, progress=False).test)
    else:
        audio = [np.zeros(16000, dtype=np.float32)]
    if args.limit is not None:
        audio = audio[:max(1, args.limit)]
    result = ship_check(args.model, audio, args.out, min_identical=args.min_identical, threads=args.threads,
                        batch=args.batch, model_type=args.model_type, layernorm=args.layernorm)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(f"sherpa-onnx {result['sherpa_onnx_version']} ({result['model_type']}): "
              f"{result['identical']}/{result['utterances']} identical ({result['identical_fraction']:.3f}, "
              f"need {result['min_identical']:.3f}); vs edgetune's default decoding "
              f"{result['identical_to_default_fraction']:.3f}")
        if result["near_tie_mismatches"]:
            print(f"  {result['near_tie_mismatches']} differ only on near ties (sherpa's ONNX Runtime "
                  f"{result['sherpa_onnxruntime']} vs {result['onnxruntime']} here), "
                  f"{result['unexplained_mismatches']} otherwise; passed by: {result['passed_by']}")
            if result["layernorm"] == "fused":
                print("  --layernorm primitive ships a copy whose logits do not depend on the ONNX Runtime version")
        if result["identical_to_study_file_fraction"] is not None:
            print(f"  layernorm primitive: sherpa's tokens equal the study file's (fused, this ONNX Runtime) on "
                  f"{result['identical_to_study_file_fraction']:.3f} of the utterances")
        if result["sample_scale_feature_error"] is not None:
            rec = result["recognizer"]
            print(f"  wenet_ctc: build the recognizer with chunk_size={rec['chunk_size']}, "
                  f"num_left_chunks={rec['num_left_chunks']}; features after undoing sherpa's x32768 "
                  f"sample scale within {result['sample_scale_feature_error']:.2g} of edgetune's")
        if result["batch"] > 1:
            print(f"  {result['batch']} streams per decode_streams call: {result['batch_identical_fraction']:.3f} "
                  f"identical to one stream at a time")
        print(f"wrote {result['model']}, {result['tokens']}, {result['howto']}, {Path(args.out) / 'ship.json'}")
        for m in result["mismatches"]:
            print(f"  differs: {m['name']}: sherpa {m['sherpa']!r} | edgetune {m['edgetune']!r} "
                  f"(near tie: {m.get('near_tie')}, needed_delta {m.get('needed_delta')})")
    return 0 if result["passed"] else 1
