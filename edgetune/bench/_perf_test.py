"""ONNX Runtime's ``onnxruntime_perf_test`` as a runner: its arguments and the parsing of its output.

Pure functions, so the parsing is tested on text even where no binary is installed. The
binary prints percentiles (in seconds) on stdout and appends one CSV line per run to its
result file: ``model_name,time_cost_s,peak_working_set,cpu_usage,run_index``; those lines
give the samples that ``edgetune check`` needs.
"""

from __future__ import annotations

import re
from typing import Any

from edgetune.errors import TargetError

_STAT = re.compile(r"^(P50|P90|P95|P99|P999|Min|Max) Latency:\s*([0-9.eE+-]+)\s*s\s*$", re.M)
_PEAK = re.compile(r"^Peak working set size:\s*(\d+)", re.M)
_AVG = re.compile(r"^Average inference time cost:\s*([0-9.eE+-]+)\s*ms", re.M)


def perf_test_argv(binary: str, model: str, result_file: str, *, runs: int, threads: int) -> list[str]:
    """``-m times -r RUNS``: a fixed number of runs; ``-x/-y``: intra/inter-op threads; ``-I``:
    generate inputs from the model's shapes (features and zero-free caches); ``-e cpu``."""
    return [binary, "-e", "cpu", "-m", "times", "-r", str(runs), "-x", str(threads), "-y", "1", "-I",
            model, result_file]


def parse_perf_test(stdout: str, result_file: str) -> dict[str, Any]:
    """Samples (ms) from the result file's CSV lines; summary from the samples; peak RSS from stdout."""
    samples: list[float] = []
    for line in result_file.splitlines():
        parts = line.strip().split(",")
        if len(parts) >= 5 and parts[-1].strip().isdigit():
            try:
                samples.append(float(parts[-4]) * 1000.0)
            except ValueError:
                continue
    if len(samples) < 2:
        stats = dict((k, float(v)) for k, v in _STAT.findall(stdout))
        raise TargetError("onnxruntime_perf_test produced no per-run samples in its result file "
                          f"({len(samples)} found; stdout stats: {stats or 'none'}); check its version supports "
                          f"'-m times' with a result file")
    latency = summarize_samples(samples)
    peak = _PEAK.search(stdout)
    printed = {k.lower(): float(v) * 1000.0 for k, v in _STAT.findall(stdout)}
    avg = _AVG.search(stdout)
    if avg:
        printed["mean"] = float(avg.group(1))
    return {"latency_ms": latency, "samples_ms": samples, "peak_rss_bytes": int(peak.group(1)) if peak else None,
            "perf_test_printed_ms": printed}


def summarize_samples(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99, mean, std (n-1), min, max: the same summary as runner.summarize, without numpy."""
    from statistics import fmean, stdev

    ordered = sorted(samples)
    return {"p50": _percentile(ordered, 50), "p90": _percentile(ordered, 90), "p99": _percentile(ordered, 99),
            "mean": fmean(samples), "std": stdev(samples) if len(samples) > 1 else 0.0, "min": ordered[0],
            "max": ordered[-1]}


def _percentile(ordered: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), so both runners summarise alike."""
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def fingerprint_script() -> str:
    """A POSIX sh script printing what the fingerprint needs, in ``@@section`` blocks."""
    return "; ".join([
        "echo @@cpuinfo", "cat /proc/cpuinfo 2>/dev/null",
        "echo @@governor", "cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null",
        "echo @@thermal",
        'for z in /sys/class/thermal/thermal_zone*; do [ -r "$z/temp" ] && '
        'printf "%s\\t%s\\n" "$(cat "$z/type" 2>/dev/null)" "$(cat "$z/temp" 2>/dev/null)"; done',
        "echo @@os", "uname -sr", "echo @@machine", "uname -m",
        "echo @@cores", "(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc --all 2>/dev/null)",
        "echo @@hostname", "uname -n", "true",
    ])


def parse_fingerprint(text: str) -> dict[str, Any]:
    """Parse :func:`fingerprint_script` output into the same fields the Python runner reports."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("@@"):
            current = line[2:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)

    def one(name: str) -> str | None:
        lines = [x.strip() for x in sections.get(name, []) if x.strip()]
        return lines[0] if lines else None

    zones = []
    for line in sections.get("thermal", []):
        kind, _, raw = line.partition("\t")
        zones.append((kind.strip() or "?", raw))
    cores = one("cores")
    from edgetune._runner import fingerprint_from  # the same parser the on-device runner uses

    return fingerprint_from("\n".join(sections.get("cpuinfo", [])), one("governor"), zones,
                            cores=int(cores) if cores and cores.isdigit() else None, affinity=None,
                            governor_core=0, cur_freq_khz=None, os=one("os"), machine=one("machine"),
                            hostname=one("hostname"), ort_version=None, python=None, numpy=None)
