"""Moved to :mod:`edgetune._runner` (below export, which runs it for the parity gate); kept so old imports work.

The file copied to a device is ``edgetune/_runner.py`` itself (standalone: numpy + onnxruntime);
this module is only the old import path and needs edgetune importable. ``python -m
edgetune.bench.runner ...`` still runs the runner's command line.
"""

from edgetune._runner import (
    METADATA_KEY, StreamingModel, RESULT_SCHEMA, emit, peak_rss_bytes, cpu_model_from_cpuinfo,
    parse_temperature, fingerprint_from, device_fingerprint, parse_cores, summarize, time_model, time_models,
    FEATURES_SCHEMA, DECODE_SCHEMA, IntegrityError, file_sha256, features_digest, load_features,
    decode_features, decode_main, main,
)

__all__ = [
    "DECODE_SCHEMA",
    "FEATURES_SCHEMA",
    "IntegrityError",
    "METADATA_KEY",
    "RESULT_SCHEMA",
    "StreamingModel",
    "cpu_model_from_cpuinfo",
    "decode_features",
    "decode_main",
    "device_fingerprint",
    "emit",
    "features_digest",
    "file_sha256",
    "fingerprint_from",
    "load_features",
    "main",
    "parse_cores",
    "parse_temperature",
    "peak_rss_bytes",
    "summarize",
    "time_model",
    "time_models",
]

if __name__ == "__main__":
    import sys

    sys.exit(main())
