"""Transcribe audio files with the real sherpa-onnx (``edgetune transcribe --engine sherpa-onnx``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

from edgetune.errors import ArtifactError


def transcribe_with_sherpa(model_path: str | os.PathLike, audio: Sequence[str | os.PathLike], threads: int = 1,
                           verify: bool = True) -> list[str]:
    """sherpa-onnx's texts for ``audio``: a file from ``edgetune ship`` (tokens.txt beside it) is used
    as is, an edgetune model is converted to a temporary folder first."""
    from edgetune.bench import open_model
    from edgetune.data import load_audio
    from edgetune.export.sherpa import export_sherpa, tail_padding_samples
    from edgetune.ship._check import decode_with_sherpa, recognizer_args

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


__all__ = ["transcribe_with_sherpa"]
