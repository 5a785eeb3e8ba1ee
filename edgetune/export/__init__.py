"""The export stage: a trained model -> one streaming ONNX file (+ the parity gate).

:mod:`edgetune.export.metadata` (the streaming contract) is pure Python; the exporter
(``export_streaming_onnx``, ``StreamingOnnxExporter``) imports torch and onnx, so it is
loaded on first use: importing this package stays light.
"""

from __future__ import annotations

from edgetune._imports import lazy_getattr

_LAZY = {
    "export_streaming_onnx": "edgetune.export.onnx_export",
    "StreamingOnnxExporter": "edgetune.export.onnx_export",
    "ExportResult": "edgetune.export.onnx_export",
    "WEIGHT_STORAGE": "edgetune.export.onnx_export",
    "check_parity": "edgetune.export.parity",
    "ParityTolerance": "edgetune.export.parity",
    "TOLERANCES": "edgetune.export.parity",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = sorted(_LAZY)
