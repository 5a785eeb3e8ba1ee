"""The ship stage: a model picked from the front, exported for a deployment runtime and checked there.

Today's runtime is sherpa-onnx (k2-fsa): :func:`ship_check` writes ``model.onnx`` in its
``zipformer2_ctc`` layout (or ``wenet_ctc``: ``model_type=``) plus ``tokens.txt`` and a how-to (:mod:`edgetune.export.sherpa`),
decodes audio with the real sherpa-onnx in a subprocess and compares the transcripts with
edgetune's own streaming runner; :func:`transcribe_with_sherpa` decodes audio files that way
(``edgetune transcribe --engine sherpa-onnx``). Importing this package imports neither onnx nor sherpa-onnx.
"""

from __future__ import annotations

from edgetune._imports import lazy_getattr

__all__ = [
    "DEFAULT_MIN_IDENTICAL",
    "SHIP_JSON",
    "decode_like_sherpa",
    "decode_with_sherpa",
    "kaldi_native_fbank",
    "ship_check",
    "transcribe_with_sherpa",
]

_LAZY = {
    "DEFAULT_MIN_IDENTICAL": "edgetune.ship._check",
    "SHIP_JSON": "edgetune.ship._check",
    "decode_like_sherpa": "edgetune.ship._check",
    "decode_with_sherpa": "edgetune.ship._check",
    "kaldi_native_fbank": "edgetune.ship._check",
    "ship_check": "edgetune.ship._check",
    "transcribe_with_sherpa": "edgetune.ship._transcribe",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
