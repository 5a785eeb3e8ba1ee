"""The ``onnxruntime_perf_test`` runner.

The parser is tested on text laid out as ORT's ``performance_runner.cc`` prints it
(``PerformanceResult::DumpToFile``: one ``model,seconds,peak,cpu,run`` CSV line per run in the
result file, then ``P50 Latency: <s> s`` lines). That text is written here, not captured from
a binary. The end-to-end test needs the real binary (``$EDGETUNE_PERF_TEST`` or on PATH) and
skips, saying so, where it is absent: the onnxruntime wheel does not ship it.
"""

from __future__ import annotations

import os
import shutil

import pytest

from edgetune.bench._perf_test import fingerprint_script, parse_fingerprint, parse_perf_test, perf_test_argv
from edgetune.errors import TargetError

STDOUT = """Session creation time cost: 0.0123 s
First inference time cost: 2 ms
Total inference time cost: 0.006 s
Total inference requests: 4
Average inference time cost: 1.5 ms
Total inference run time: 0.0061 s
Number of inferences per second: 655.7
Avg CPU usage: 98 %
Peak working set size: 31457280 bytes
Min Latency: 0.001 s
Max Latency: 0.002 s
P50 Latency: 0.0015 s
P90 Latency: 0.002 s
P95 Latency: 0.002 s
P99 Latency: 0.002 s
P999 Latency: 0.002 s
"""
RESULT_FILE = """edgetune.abc123,0.001,31457280,98,0
edgetune.abc123,0.0015,31457280,98,1
edgetune.abc123,0.0015,31457280,98,2
edgetune.abc123,0.002,31457280,98,3

Min Latency: 0.001 s
P50 Latency: 0.0015 s
"""


def test_parse_perf_test_output():
    r = parse_perf_test(STDOUT, RESULT_FILE)
    assert r["samples_ms"] == pytest.approx([1.0, 1.5, 1.5, 2.0])
    assert r["latency_ms"]["p50"] == pytest.approx(1.5) and r["latency_ms"]["mean"] == pytest.approx(1.5)
    assert r["peak_rss_bytes"] == 31457280
    assert r["perf_test_printed_ms"]["p90"] == pytest.approx(2.0)


def test_parse_perf_test_without_samples_is_an_error():
    with pytest.raises(TargetError, match="no per-run samples"):
        parse_perf_test(STDOUT, "")


def test_perf_test_argv_is_an_argument_list():
    argv = perf_test_argv("/opt/ort/onnxruntime_perf_test", "model.onnx", "r.txt", runs=50, threads=2)
    assert argv[0] == "/opt/ort/onnxruntime_perf_test" and argv[-2:] == ["model.onnx", "r.txt"]
    assert argv[argv.index("-r") + 1] == "50" and argv[argv.index("-x") + 1] == "2" and "-I" in argv


def test_shell_fingerprint_on_this_machine():
    import subprocess

    # OMP_NUM_THREADS (set by a pinned worker, or on a board) must not change the core count: GNU nproc
    # reads it, so the script asks getconf for the online CPUs first
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(["sh", "-c", fingerprint_script()], capture_output=True, text=True, check=True,
                         env=env).stdout
    fp = parse_fingerprint(out)
    assert fp["cores"] == os.cpu_count() and fp["machine"] == os.uname().machine and fp["os"]


def test_perf_test_binary_end_to_end(tmp_path):
    binary = os.environ.get("EDGETUNE_PERF_TEST") or shutil.which("onnxruntime_perf_test")
    if not binary:
        pytest.skip("onnxruntime_perf_test is not installed here (the onnxruntime wheel does not ship it; build "
                    "ONNX Runtime from source and set $EDGETUNE_PERF_TEST to run this test)")
    from edgetune.bench import bench_model
    from edgetune.bench.testing import make_streaming_model

    model = make_streaming_model(tmp_path / "m.onnx", width=64)
    r = bench_model(model, "local", runner="perf_test", perf_test=binary, runs=20)
    assert len(r["samples_ms"]) == 20 and r["runner"] == "perf_test"
