"""Benchmark harness: time an edgetune ONNX model on a device, and check results against budgets.

Transports (where it runs: ``local``, ``ssh://``, ``adb://``) are kept apart from the runner
(what is timed: ``runner.py``, numpy + onnxruntime only). Importing this package is light:
no onnxruntime, onnx or numpy import happens until a benchmark runs.
"""

from edgetune.bench._harness import bench_model, bench_models, read_model_metadata
from edgetune.bench._transport import (AdbTransport, LocalTransport, SshTransport, Transport, parse_target)

__all__ = ["bench_model", "bench_models", "read_model_metadata", "parse_target", "Transport", "LocalTransport",
           "SshTransport", "AdbTransport"]
