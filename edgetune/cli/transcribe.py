"""``edgetune transcribe MODEL.onnx AUDIO...``: transcribe audio files with an exported model.

Parses arguments and prints one ``path<TAB>transcript`` line per file; the decoding is
:func:`edgetune.bench.transcribe_file` (the file's own metadata, ``load_audio``, ``compute_fbank``
and the streaming runner: exactly what a device would do); with ``--engine sherpa-onnx``,
:func:`edgetune.ship.transcribe_with_sherpa`.
"""

from __future__ import annotations

import argparse
import json

from edgetune.bench import open_model, transcribe_file


def register(subparsers) -> None:
    p = subparsers.add_parser("transcribe", help="transcribe audio files with an exported edgetune model",
                              description="Stream audio files through an edgetune ONNX model (chunk by chunk).")
    p.add_argument("model", help="an edgetune .onnx file (from `edgetune candidate` or a study)")
    p.add_argument("audio", nargs="+", help="audio files (WAV, FLAC, OGG; any sample rate, mono or multi-channel)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object per file instead of TSV")
    p.add_argument("--engine", choices=["edgetune", "sherpa-onnx"], default="edgetune",
                   help="edgetune's runner (default) or the real sherpa-onnx, for a side-by-side check "
                        "(an edgetune file is converted on the fly; see `edgetune ship`)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the check of the content digest stored at export (a modified model runs anyway)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.engine == "sherpa-onnx":
        from edgetune.ship import transcribe_with_sherpa

        for audio, text in zip(args.audio, transcribe_with_sherpa(args.model, args.audio, args.threads,
                                                                    verify=not args.no_verify)):
            print(json.dumps({"audio": audio, "text": text}) if args.json else f"{audio}\t{text}")
        return 0
    model = open_model(args.model, threads=args.threads, verify=not args.no_verify)
    for audio in args.audio:
        text = transcribe_file(model, audio)
        print(json.dumps({"audio": audio, "text": text}) if args.json else f"{audio}\t{text}")
    return 0
