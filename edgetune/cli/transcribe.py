"""``edgetune transcribe MODEL.onnx AUDIO...``: transcribe audio files with an exported model.

Parses arguments and prints one ``path<TAB>transcript`` line per file; the decoding is
:func:`edgetune.bench.transcribe_file` (the file's own metadata, ``load_audio``, ``compute_fbank``
and the streaming runner: exactly what a device would do).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from edgetune.bench import open_model, transcribe_file
from edgetune.errors import ArtifactError


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


def transcribe_with_sherpa(model_path: str | os.PathLike, audio: list[str], threads: int = 1,
                           verify: bool = True) -> list[str]:
    """sherpa-onnx's texts for ``audio``: a file from ``edgetune ship`` (tokens.txt beside it) is used
    as is, an edgetune model is converted to a temporary folder first."""
    import tempfile

    from edgetune.data import load_audio
    from edgetune.export.sherpa import export_sherpa, tail_padding_samples
    from edgetune.ship import decode_with_sherpa
    from edgetune.ship._check import recognizer_args

    model = open_model(model_path, threads=threads, verify=verify)
    with tempfile.TemporaryDirectory(prefix="edgetune-sherpa-") as tmp:
        if model.meta.get("extra", {}).get("sherpa_onnx"):
            path, tokens = Path(model_path), Path(model_path).with_name("tokens.txt")
            if not tokens.is_file():
                raise ArtifactError(f"{str(tokens)!r} is missing: sherpa-onnx needs the tokens.txt that "
                                    f"`edgetune ship` wrote beside {str(model_path)!r}")
            tail = int(model.meta["extra"]["sherpa_onnx"]["tail_padding_samples"])
            model_type, worker_args = recognizer_args(model.meta["extra"]["sherpa_onnx"])
        else:
            done = export_sherpa(model_path, tmp)
            path, tokens, tail = done.model, done.tokens, tail_padding_samples(done.spec)
            model_type, worker_args = recognizer_args(done.spec.extra["sherpa_onnx"])
        rate = int(model.meta["features"]["sample_rate"])
        waves = [load_audio(a, rate) for a in audio]
        results, _ = decode_with_sherpa(path, tokens, waves, tail_samples=tail, sample_rate=rate, threads=threads,
                                        model_type=model_type, worker_args=worker_args)
    return [" ".join(r["text"].split()) for r in results]


def run(args: argparse.Namespace) -> int:
    if args.engine == "sherpa-onnx":
        for audio, text in zip(args.audio, transcribe_with_sherpa(args.model, args.audio, args.threads,
                                                                    verify=not args.no_verify)):
            print(json.dumps({"audio": audio, "text": text}) if args.json else f"{audio}\t{text}")
        return 0
    model = open_model(args.model, threads=args.threads, verify=not args.no_verify)
    for audio in args.audio:
        text = transcribe_file(model, audio)
        print(json.dumps({"audio": audio, "text": text}) if args.json else f"{audio}\t{text}")
    return 0
