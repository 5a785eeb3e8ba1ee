"""edgetune: find the best streaming ASR model for a given phone or board.

The pipeline, one subpackage per stage, data flowing one way::

    data -> model -> train (QAT, pruning) -> export (ONNX) -> bench (harness/transport)
         -> search (study) -> report

``import edgetune`` stays light: it never imports torch, onnxruntime or plotting
libraries (a test asserts it). Heavy stages are imported when used.
"""

from edgetune.errors import EdgetuneError
from edgetune.knobs import Knobs

__version__ = "0.1.0"

__all__ = ["EdgetuneError", "Knobs", "__version__"]
