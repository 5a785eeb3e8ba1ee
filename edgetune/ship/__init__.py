"""The ship stage: a model picked from the front, exported for a deployment runtime and checked there.

Today's runtime is sherpa-onnx (k2-fsa): :func:`ship_check` writes ``model.onnx`` in its
``zipformer2_ctc`` layout (or ``wenet_ctc``: ``model_type=``) plus ``tokens.txt`` and a how-to (:mod:`edgetune.export.sherpa`),
decodes audio with the real sherpa-onnx in a subprocess and compares the transcripts with
edgetune's own streaming runner. Importing this package imports neither onnx nor sherpa-onnx.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_MIN_IDENTICAL", "SHIP_JSON", "decode_like_sherpa", "decode_with_sherpa", "ship_check"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from edgetune.ship import _check

        return getattr(_check, name)
    raise AttributeError(f"module 'edgetune.ship' has no attribute {name!r}")
