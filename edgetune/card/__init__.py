"""Shipping one trial: ``edgetune export`` copies its sha256-verified model out of a study and writes
its model card (knobs, WER, latency percentiles and the host they were measured on, size, how to
run it), as an edgetune ONNX file or, with ``--format sherpa-onnx``, with sherpa-onnx's files beside it.

Light to import: the study storage loads only when a trial is exported.
"""

from __future__ import annotations

from edgetune._imports import lazy_getattr

__all__ = ["CARD_FORMAT", "ExportedModel", "build_card", "card_markdown", "card_paths", "export_trial",
           "export_trial_sherpa", "python_snippet"]

_LAZY = {name: "edgetune.card._card" for name in __all__}

__getattr__ = lazy_getattr(__name__, _LAZY)
