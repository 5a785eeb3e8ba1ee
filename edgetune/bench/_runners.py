"""What is timed on the device: runners named by a key (``python``, ``perf_test``), kept apart
from the transport that carries them.

Each runner is registered (:func:`register_runner`: name, the bench settings it reads, factory),
so a new one is one :class:`DeviceRunner` subclass plus its registration; :func:`get_runner`
lists the registered names when a name is unknown. The harness (``_harness.py``) pushes the
models into ``m<i>/model.onnx`` of a session directory, calls :meth:`DeviceRunner.prepare`
once, then :meth:`DeviceRunner.time` per round.

Built-in runners:

* ``"python"`` (default): ``edgetune/_runner.py`` (numpy + onnxruntime) streams the model chunk
  by chunk with its caches and times each chunk step. It can hold several models in one
  process and alternate them (``interleaves``: block interleaving, the reference model).
* ``"perf_test"``: ONNX Runtime's own ``onnxruntime_perf_test`` binary, for devices with no
  Python. It times one ``Run`` per sample with generated inputs (caches are inputs like any
  other), so it measures the same chunk step without carrying caches over. Samples come from
  its result file (one CSV line per run), the fingerprint from a few ``cat`` commands.
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from edgetune._registry import Registry
from edgetune.bench._transport import SETUP_TIMEOUT_S, Transport
from edgetune.errors import ConfigError, TargetError

RUNNER_PATH = Path(__file__).parents[1] / "_runner.py"  # standalone: copied as-is to the device
REMOTE_MODEL = "model.onnx"
REMOTE_RUNNER = "edgetune_runner.py"


@dataclass(frozen=True)
class Timing:
    """What every runner is told: threads, warmup steps, pinned cores, the bound of one invocation."""

    threads: int = 1
    warmup: int = 20
    cores: str | None = None
    timeout_s: float = 600.0


class DeviceRunner(ABC):
    """Times models already pushed into a session directory on the device."""

    name: str = ""
    #: can alternate several models in one process (``interleave="block"``, ``reference=True``)
    interleaves: bool = False

    def prepare(self, transport: Transport, remote_dir: str) -> None:
        """Push what the runner needs into ``remote_dir`` (once per session); default: nothing."""

    @abstractmethod
    def time(self, transport: Transport, remote_dir: str, models: list[str], *, runs: int, timing: Timing,
             chunk_ms: list[float], block: int = 20) -> list[dict[str, Any]]:
        """Time ``models`` (paths relative to ``remote_dir``; one unless :attr:`interleaves`) for
        ``runs`` chunk steps each; one result per model with ``samples_ms``, ``latency_ms``,
        ``rtf``, ``peak_rss_bytes``, ``fingerprint`` and ``warnings``. TargetError on failure."""


# ----------------------------------------------------------------------------- python runner


class PythonRunner(DeviceRunner):
    """``edgetune/_runner.py`` run by ``transport.python`` (numpy + onnxruntime on the device)."""

    name = "python"
    interleaves = True

    def __init__(self, features: str | None = None, seed: int = 0):
        self.features, self.seed = features, seed

    def prepare(self, transport: Transport, remote_dir: str) -> None:
        transport.push(str(RUNNER_PATH), f"{remote_dir}/{REMOTE_RUNNER}")
        if self.features:
            transport.push(self.features, f"{remote_dir}/features.npy")

    def time(self, transport, remote_dir, models, *, runs, timing, chunk_ms, block=20):
        return run_python_runner(transport, remote_dir, models, threads=timing.threads, runs=runs,
                                 warmup=timing.warmup, cores=timing.cores, timeout_s=timing.timeout_s,
                                 features=bool(self.features), seed=self.seed, block=block)


def run_python_runner(transport: Transport, remote_dir: str, models: list[str], *, threads: int, runs: int,
                      warmup: int, cores: str | None, timeout_s: float, features: bool, seed: int,
                      block: int = 20) -> list[dict[str, Any]]:
    """Run the pushed runner in ``remote_dir`` on ``models`` (relative paths); one result per model."""
    argv = [transport.python, REMOTE_RUNNER, "--threads", str(threads), "--runs", str(runs),
            "--warmup", str(warmup), "--seed", str(seed), "--block", str(block),
            # the runner stops itself a little before the host gives up, so nothing lingers on the device
            "--max-seconds", f"{max(1.0, timeout_s - 2.0):g}"]
    for model in models:
        argv += ["--model", model]
    if cores:
        argv += ["--cores", cores]
    if features:
        argv += ["--features", "features.npy"]
    res = transport.run(argv, timeout_s, cwd=remote_dir, what="run the latency runner")
    events = parse_events(res.stdout)
    final = events[-1] if events else None
    if final is None or final.get("type") != "result" or res.returncode != 0:
        if final is not None and final.get("type") == "error":
            raise TargetError(f"{transport.target}: the runner failed: {final.get('error')}: {final.get('message')}")
        detail = (res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-3:]
        raise TargetError(f"{transport.target}: the runner exited with status {res.returncode} and no result "
                          f"line ({transport.python} {REMOTE_RUNNER}): {' | '.join(detail)}. Fix: check that "
                          f"{transport.python!r} exists on the device with numpy and onnxruntime installed "
                          f"(set python=... in the target or $EDGETUNE_REMOTE_PYTHON)")
    results = final["results"] if "results" in final else [{k: v for k, v in final.items() if k != "type"}]
    for r in results:
        for key in ("runs", "warmup", "threads", "cores"):  # the harness reports these itself
            r.pop(key, None)
    return results


def parse_events(stdout: str) -> list[dict[str, Any]]:
    """The runner's JSON event lines (``{"type": ...}``) in order; other lines are ignored."""
    events = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and "type" in event:
                events.append(event)
    return events


# ----------------------------------------------------------------------------- onnxruntime_perf_test


class PerfTestRunner(DeviceRunner):
    """ONNX Runtime's ``onnxruntime_perf_test`` binary (``perf_test=PATH``, $EDGETUNE_PERF_TEST or PATH)."""

    name = "perf_test"

    def __init__(self, perf_test: str | None = None):
        self.binary = perf_test or os.environ.get("EDGETUNE_PERF_TEST") or "onnxruntime_perf_test"

    def time(self, transport, remote_dir, models, *, runs, timing, chunk_ms, block=20):
        return [self._one(transport, f"{remote_dir}/{posixpath.dirname(m)}".rstrip("/"), runs, timing, c)
                for m, c in zip(models, chunk_ms)]

    def _one(self, transport: Transport, model_dir: str, runs: int, timing: Timing, chunk_ms: float) -> dict[str, Any]:
        from edgetune.bench._perf_test import fingerprint_script, parse_fingerprint, parse_perf_test, perf_test_argv

        argv = perf_test_argv(self.binary, REMOTE_MODEL, "perf_result.txt", runs=runs, threads=timing.threads)
        if timing.cores:
            argv = ["taskset", "-c", timing.cores, *argv]
        res = transport.run(argv, timing.timeout_s, cwd=model_dir, what="run onnxruntime_perf_test")
        if res.returncode != 0:
            tail = " | ".join((res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-3:])
            raise TargetError(f"{transport.target}: {self.binary} exited with status {res.returncode}: {tail}. Fix: "
                              f"pass perf_test=/path/to/onnxruntime_perf_test (or $EDGETUNE_PERF_TEST) built for "
                              f"the device")
        with tempfile.TemporaryDirectory(prefix="edgetune-perf.") as tmp:
            local = os.path.join(tmp, "perf_result.txt")
            transport.pull(f"{model_dir}/perf_result.txt", local)
            with open(local, encoding="utf-8", errors="replace") as f:
                result_file = f.read()
        parsed = parse_perf_test(res.stdout, result_file)
        fp_res = transport.run(["sh", "-c", fingerprint_script()], SETUP_TIMEOUT_S, what="read the device fingerprint")
        fingerprint = parse_fingerprint(fp_res.stdout)
        fingerprint["perf_test"] = self.binary
        latency = parsed["latency_ms"]
        return {**parsed, "fingerprint": fingerprint, "rtf": latency["mean"] / chunk_ms if chunk_ms else None,
                "baseline_rss_bytes": None, "model_rss_bytes": None, "warnings": [
                    "onnxruntime_perf_test times Run() with generated inputs: caches are not carried over "
                    "between samples and warmup is its single first run"]}


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class RunnerKind:
    """One registered runner: its name, the bench settings it reads (passed to the factory as
    keyword arguments when given) and its factory ``(**options) -> DeviceRunner``."""

    name: str
    options: tuple[str, ...]
    factory: Callable[..., DeviceRunner]

    def make(self, settings: Mapping[str, Any]) -> DeviceRunner:
        """A runner from the bench ``settings``; only the options this runner reads are passed."""
        return self.factory(**{k: settings[k] for k in self.options if k in settings})


_RUNNERS: Registry[RunnerKind] = Registry(
    lambda name, names: ConfigError(f"runner must be one of {', '.join(names)}, but got {name!r}"))


def register_runner(name: str, options: tuple[str, ...], factory: Callable[..., DeviceRunner]) -> RunnerKind:
    """Make ``runner=name`` time models with ``factory(**options)`` (re-registering replaces it)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a runner name is a Python identifier like 'perf_test', but got {name!r}")
    return _RUNNERS.register(name, RunnerKind(name, tuple(options), factory))


def get_runner(name: str) -> RunnerKind:
    """The registered runner ``name``; ConfigError listing the registered ones when unknown."""
    return _RUNNERS.get(name)


def runners() -> list[str]:
    """The registered runner names, in registration order."""
    return _RUNNERS.names()


def runner_options() -> set[str]:
    """Every bench setting some registered runner reads (the harness accepts these)."""
    return {o for kind in _RUNNERS.values() for o in kind.options}


register_runner("python", ("features", "seed"), PythonRunner)
register_runner("perf_test", ("perf_test",), PerfTestRunner)
RUNNERS = tuple(_RUNNERS.names())  # the built-in ones; runners() also lists those registered later

__all__ = ["REMOTE_MODEL", "REMOTE_RUNNER", "RUNNERS", "RUNNER_PATH", "DeviceRunner", "PerfTestRunner",
           "PythonRunner", "RunnerKind", "Timing", "get_runner", "parse_events", "register_runner",
           "run_python_runner", "runner_options", "runners"]
