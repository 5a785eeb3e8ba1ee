"""The export stage: a trained model -> one streaming ONNX file (+ the parity gate).

:mod:`edgetune.export.metadata` (the streaming contract) is pure Python; the exporter
(``export_streaming_onnx``, ``StreamingOnnxExporter``) imports torch and onnx, so it is
loaded on first use: importing this package stays light.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "export_streaming_onnx": "edgetune.export.onnx_export",
    "StreamingOnnxExporter": "edgetune.export.onnx_export",
    "ExportResult": "edgetune.export.onnx_export",
    "WEIGHT_STORAGE": "edgetune.export.onnx_export",
    "check_parity": "edgetune.export.parity",
    "ParityTolerance": "edgetune.export.parity",
    "TOLERANCES": "edgetune.export.parity",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgetune.export' has no attribute {name!r}")


__all__ = sorted(_LAZY)
