"""Decode audio with an exported model: the file's own metadata (features, chunk, caches,
vocabulary), :func:`edgetune.data.load_audio` (any rate, any channel count), :func:`compute_fbank`
and the streaming runner, exactly what a device would do (``edgetune transcribe`` prints it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from edgetune.errors import ArtifactError


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


__all__ = ["open_model", "transcribe_file"]
