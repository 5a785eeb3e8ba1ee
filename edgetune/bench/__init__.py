"""Benchmark harness: time an edgetune ONNX model on a device, and check results against budgets.

Transports (where it runs: ``local``, ``ssh://``, ``adb://``; :func:`register_transport`) are
kept apart from the runner (what is timed: ``python``, the numpy + onnxruntime ``runner.py``, or
``perf_test``; :func:`register_runner`). Importing this package is light:
no onnxruntime, onnx or numpy import happens until a benchmark runs. :func:`device_wer` decodes
a test set through the runner on the target (WER on the device's own kernels);
:func:`transcribe_file` decodes one audio file here. ``edgetune check``'s rules (:func:`check_history`,
:func:`check_stored_baseline`, their defaults) and statistics (:func:`verdict`, ...) are here too.
"""

from __future__ import annotations

from edgetune._imports import lazy_getattr
from edgetune.bench._check import (DEFAULT_DETECT_PCT, DEFAULT_MIN_EFFECT_PCT, DEFAULT_NOISE_FLOOR_PCT,
                                   DEFAULT_REGRESSION_ON, Results, check_history, check_stored_baseline)
from edgetune.bench._harness import bench_model, bench_models, read_model_metadata
from edgetune.bench._reference import REFERENCE, reference_model
from edgetune.bench._runners import DeviceRunner, Timing, get_runner, register_runner, runners
from edgetune.bench._transport import (AdbTransport, LocalTransport, SshTransport, Transport, parse_target,
                                       register_transport, transports)
from edgetune.bench._transcribe import open_model, transcribe_file
from edgetune.bench._wer import device_wer, write_features

#: numpy / onnxruntime behind them: loaded on first use
_LAZY = {
    "adjust_runs": "edgetune.bench._gate",
    "reference_slope": "edgetune.bench._gate",
    "bootstrap_relative_diff": "edgetune.bench._stats",
    "default_block": "edgetune.bench._stats",
    "verdict": "edgetune.bench._stats",
    "StreamingModel": "edgetune._runner",
    "device_fingerprint": "edgetune._runner",
}

__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = ["bench_model", "bench_models", "read_model_metadata", "parse_target", "Transport", "LocalTransport",
           "SshTransport", "AdbTransport", "register_transport", "transports", "DeviceRunner", "Timing",
           "get_runner", "register_runner", "runners", "device_wer", "write_features", "open_model",
           "transcribe_file", "DEFAULT_DETECT_PCT", "DEFAULT_MIN_EFFECT_PCT", "DEFAULT_NOISE_FLOOR_PCT",
           "DEFAULT_REGRESSION_ON", "Results", "check_history", "check_stored_baseline", "REFERENCE",
           "reference_model", *sorted(_LAZY)]
