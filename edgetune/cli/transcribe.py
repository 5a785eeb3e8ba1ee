"""``edgetune transcribe MODEL.onnx AUDIO...``: transcribe audio files with an exported model.

Uses nothing but the file's own metadata (features, chunk, caches, vocabulary),
:func:`edgetune.data.load_audio` (any rate, any channel count), :func:`compute_fbank` and the
streaming runner: exactly what a device would do. Prints one ``path<TAB>transcript`` line per file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

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


def open_model(path: str | os.PathLike, threads: int = 1, verify: bool = True) -> Any:
    """A StreamingModel for ``path``, or ArtifactError naming the file and the fix.

    ``verify`` checks the content digest stored at export first (a modified file is refused)."""
    from edgetune._runner import StreamingModel
    from edgetune.export.metadata import METADATA_KEY

    p = Path(path)
    if not p.is_file():
        raise ArtifactError(f"model file {str(p)!r} does not exist; pass the model.onnx written by "
                            f"`edgetune candidate --out DIR` (DIR/model.onnx) or by a study")
    if verify:
        from edgetune.export._integrity import verify_model

        if verify_model(p) is None:
            print(f"edgetune: warning: {p} carries no content digest (exported by an older edgetune); "
                  "it cannot be checked for modification", file=sys.stderr)
    try:
        return StreamingModel(str(p), threads=threads)
    except ValueError as exc:  # the runner's "no edgetune metadata"
        raise ArtifactError(f"{str(p)!r} is not an edgetune model: {exc}. Fix: export it with edgetune, "
                            f"which writes the '{METADATA_KEY}' streaming metadata") from None
    except Exception as exc:  # onnxruntime's InvalidProtobuf / Fail / NoSuchFile
        raise ArtifactError(f"{str(p)!r} cannot be loaded by ONNX Runtime ({type(exc).__name__}: "
                            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}); "
                            f"re-export it or check that it is an ONNX file") from None


def transcribe_file(model: Any, audio: str | os.PathLike) -> str:
    """Greedy transcript of one audio file (DataError naming the file if it cannot be read)."""
    from edgetune.data import FeatureSpec, compute_fbank, load_audio

    spec = FeatureSpec(**model.meta["features"])
    wave = load_audio(audio, spec.sample_rate)
    return model.greedy_text(model.run_utterance(compute_fbank(wave, spec)))


def transcribe_with_sherpa(model_path: str | os.PathLike, audio: list[str], threads: int = 1,
                           verify: bool = True) -> list[str]:
    """sherpa-onnx's texts for ``audio``: a file from ``edgetune ship`` (tokens.txt beside it) is used
    as is, an edgetune model is converted to a temporary folder first."""
    import tempfile

    from edgetune.data import load_audio
    from edgetune.export.sherpa import export_sherpa, tail_padding_samples
    from edgetune.ship import decode_with_sherpa

    model = open_model(model_path, threads=threads, verify=verify)
    with tempfile.TemporaryDirectory(prefix="edgetune-sherpa-") as tmp:
        if model.meta.get("extra", {}).get("sherpa_onnx"):
            path, tokens = Path(model_path), Path(model_path).with_name("tokens.txt")
            if not tokens.is_file():
                raise ArtifactError(f"{str(tokens)!r} is missing: sherpa-onnx needs the tokens.txt that "
                                    f"`edgetune ship` wrote beside {str(model_path)!r}")
            tail = int(model.meta["extra"]["sherpa_onnx"]["tail_padding_samples"])
        else:
            done = export_sherpa(model_path, tmp)
            path, tokens, tail = done.model, done.tokens, tail_padding_samples(done.spec)
        rate = int(model.meta["features"]["sample_rate"])
        waves = [load_audio(a, rate) for a in audio]
        results, _ = decode_with_sherpa(path, tokens, waves, tail_samples=tail, sample_rate=rate, threads=threads)
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
