"""Benchmark harness: time an edgetune ONNX model on a device, and check results against budgets.

Transports (where it runs: ``local``, ``ssh://``, ``adb://``; :func:`register_transport`) are
kept apart from the runner (what is timed: ``python``, the numpy + onnxruntime ``runner.py``, or
``perf_test``; :func:`register_runner`). Importing this package is light:
no onnxruntime, onnx or numpy import happens until a benchmark runs. :func:`device_wer` decodes
a test set through the runner on the target (WER on the device's own kernels);
:func:`transcribe_file` decodes one audio file here.
"""

from edgetune.bench._harness import bench_model, bench_models, read_model_metadata
from edgetune.bench._runners import DeviceRunner, Timing, get_runner, register_runner, runners
from edgetune.bench._transport import (AdbTransport, LocalTransport, SshTransport, Transport, parse_target,
                                       register_transport, transports)
from edgetune.bench._transcribe import open_model, transcribe_file
from edgetune.bench._wer import device_wer, write_features

__all__ = ["bench_model", "bench_models", "read_model_metadata", "parse_target", "Transport", "LocalTransport",
           "SshTransport", "AdbTransport", "register_transport", "transports", "DeviceRunner", "Timing",
           "get_runner", "register_runner", "runners", "device_wer", "write_features", "open_model",
           "transcribe_file"]
