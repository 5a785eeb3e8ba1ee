"""Adding a transport, runner, renderer, sampler or scheduler takes one definition plus its
registration: each is written here in one place, registered, run through its contract suite
(edgetune.testing) and through the product's own entry point (bench_model, build_report,
run_study with the simulated runner)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from edgetune.bench import DeviceRunner, Transport, bench_model, parse_target, register_runner, register_transport
from edgetune.bench._transport import run_bounded
from edgetune.errors import TargetError
from edgetune.report import build_report, register_renderer
from edgetune.schedulers import register_scheduler
from edgetune.search import SimulatedRunner, StudyPaths, config_from_yaml, open_study, register_sampler, run_study
from edgetune.testing import RendererContract, SamplerContract, SchedulerContract, TransportContract

# ============================================================================ a transport


class NiceTransport(Transport):
    """``nice://?level=N``: this machine, every command under ``nice -n N`` (a busy board's
    background priority), files copied, one temporary directory per session."""

    def __init__(self, target: str, level: int, python: str | None = None):
        self.target, self.level = target, level
        self.python = python or os.environ.get("EDGETUNE_LOCAL_PYTHON") or sys.executable

    def run(self, argv, timeout_s, *, cwd=None, what="run"):
        return run_bounded(["nice", "-n", str(self.level), *argv], timeout_s, what=f"{self.target}: {what}", cwd=cwd)

    def push(self, local_path, remote_path):
        shutil.copyfile(local_path, remote_path)

    def pull(self, remote_path, local_path):
        shutil.copyfile(remote_path, local_path)

    def make_tempdir(self):
        return tempfile.mkdtemp(prefix="edgetune-nice.")


def _nice(target: str, url: Any, options: dict[str, list[str]]) -> Transport:
    level = (options.get("level") or ["10"])[-1]
    if not level.isdigit() or not 0 <= int(level) <= 19:
        raise TargetError(f"{target}: level must be an integer 0..19, but got {level!r}")
    return NiceTransport(target, int(level), (options.get("python") or [None])[-1])


@pytest.fixture
def nice_scheme():
    from edgetune.bench._transport import _TRANSPORTS

    register_transport("nice", ("level", "python"), _nice)
    yield "nice://?level=7"
    _TRANSPORTS.pop("nice")


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    from edgetune.bench.testing import make_streaming_model

    return make_streaming_model(tmp_path_factory.mktemp("models") / "toy.onnx", width=32, depth=1)


class TestNiceTransport(TransportContract):
    @pytest.fixture
    def transport(self, nice_scheme):
        return parse_target(nice_scheme)

    def test_commands_run_at_its_priority(self, transport):
        expected = min(19, os.nice(0) + 7)
        assert transport.run(["nice"], 30).stdout.strip() == str(expected)

    def test_bench_model_runs_through_it(self, transport, nice_scheme, toy):
        r = bench_model(toy, nice_scheme, runs=3, warmup=0)
        assert len(r["samples_ms"]) == 3 and r["target"] == nice_scheme and r["runner"] == "python"
        with pytest.raises(TargetError, match=r"'tmpdir'.*valid options: level, python"):
            parse_target("nice://?tmpdir=/x")
        with pytest.raises(TargetError, match="level must be an integer 0..19"):
            parse_target("nice://?level=-3")


def test_a_study_config_may_name_the_new_transport(nice_scheme):
    assert config_from_yaml(f"target: '{nice_scheme}'\n").primary_target == nice_scheme


# ============================================================================ a runner


class RoundTripRunner(DeviceRunner):
    """``runner="roundtrip"``: times one empty command through the transport per sample (what a
    transport adds to every call), no model is run. ``command`` names the program (default true)."""

    name = "roundtrip"

    def __init__(self, command: str | None = None):
        self.command = command or "true"

    def time(self, transport, remote_dir, models, *, runs, timing, chunk_ms, block=20):
        from edgetune.bench._perf_test import summarize_samples

        results = []
        for _model, chunk in zip(models, chunk_ms):
            samples = []
            for _ in range(timing.warmup + runs):
                start = time.perf_counter()
                if transport.run([self.command], timing.timeout_s, cwd=remote_dir).returncode != 0:
                    raise TargetError(f"{transport.target}: {self.command} failed")
                samples.append((time.perf_counter() - start) * 1000.0)
            samples = samples[timing.warmup:]
            latency = summarize_samples(samples)
            results.append({"samples_ms": samples, "latency_ms": latency, "rtf": latency["mean"] / chunk,
                            "peak_rss_bytes": None, "fingerprint": {}, "warnings": ["no model was run"]})
        return results


@pytest.fixture
def roundtrip_runner():
    from edgetune.bench._runners import _RUNNERS

    register_runner("roundtrip", ("command",), RoundTripRunner)
    yield "roundtrip"
    _RUNNERS.pop("roundtrip")


def test_a_registered_runner_is_used_by_bench_model(roundtrip_runner, toy):
    from edgetune.bench import bench_models
    from edgetune.errors import ConfigError

    r = bench_model(toy, "local", runner=roundtrip_runner, runs=4, warmup=1, rounds=2, command="true")
    assert r["runner"] == "roundtrip" and len(r["samples_ms"]) == 8 and r["warnings"] == ["no model was run"]
    assert r["size_bytes"] == toy.stat().st_size  # the host-side facts come from the harness, as for any runner
    with pytest.raises(TargetError, match="false failed"):
        bench_model(toy, "local", runner=roundtrip_runner, runs=2, warmup=0, command="false")
    with pytest.raises(ConfigError, match="reference=True needs the python runner"):  # it cannot interleave
        bench_models([toy], "local", runner=roundtrip_runner, reference=True)


def test_the_perf_test_runner_through_a_stand_in_binary(tmp_path, toy):
    """perf_test's registry entry end to end, with a script that answers as the binary does."""
    script = tmp_path / "onnxruntime_perf_test"
    script.write_text("#!/bin/sh\n# argv: -e cpu -m times -r RUNS -x T -y 1 -I MODEL RESULT\n"
                      'runs=$6; eval "result=\\${$#}"\n'
                      'i=0; while [ $i -lt $runs ]; do echo "m,0.00$((i % 5 + 1)),1000,99,$i" >> "$result"; '
                      "i=$((i + 1)); done\necho 'Peak working set size: 4096 bytes'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    r = bench_model(toy, "local", runner="perf_test", perf_test=str(script), runs=6)
    assert r["runner"] == "perf_test" and r["samples_ms"] == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0, 1.0])
    assert r["peak_rss_bytes"] == 4096 and r["fingerprint"]["perf_test"] == str(script)


# ============================================================================ a renderer


def write_front_json(data: Any, folder: Path, options: dict[str, Any]) -> None:
    """``front.json``: the feasible front and its hypervolume, for a dashboard to read."""
    front = data.front_table()
    doc = {"study": data.study_name, "objectives": data.objectives, "hypervolume": data.hypervolume,
           "reference_point": data.reference_point,
           "front": [{"number": int(r["number"]), **{o: float(r[o]) for o in data.objectives}}
                     for r in front.to_dict("records")],
           "failures": [{"reason": f["reason"], "trials": f["trials"]} for f in data.failures]}
    (folder / "front.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")


@pytest.fixture
def json_format():
    from edgetune.report._renderers import _RENDERERS

    register_renderer("json", ("front.json",), write_front_json, default=False)
    yield "json"
    _RENDERERS.pop("json")


@pytest.mark.usefixtures("json_format")
class TestJsonRenderer(RendererContract):
    name = "json"

    def test_the_front_is_the_reports_front(self, study_dir, json_format, tmp_path):
        out = build_report(study_dir, out_dir=tmp_path / "r", formats=["csv", "json"])
        doc = json.loads((out / "front.json").read_text())
        with open(out / "trials.csv", newline="") as f:
            on_front = sorted(int(r["number"]) for r in csv.DictReader(f) if r["pareto"] == "True")
        assert sorted(f["number"] for f in doc["front"]) == on_front and on_front and doc["hypervolume"] > 0


def test_a_default_renderer_joins_every_report(tmp_path):
    from edgetune.report._renderers import _RENDERERS

    config = config_from_yaml("study_name: j\nn_trials: 4\nspace: {bits: [8, 32]}\nobjectives: [wer, latency_ms]\n"
                              "sampler: {name: random}\ntrain: {epochs: 1}\n")
    register_renderer("json", ("front.json",), write_front_json)
    try:
        run_study(config, tmp_path, runner=SimulatedRunner(), progress=False, report=build_report)
    finally:
        _RENDERERS.pop("json")
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "front.json", "index.html", "pareto.md", "pareto.png", "trials.csv"]


# ============================================================================ a sampler


def qmc_sampler(config: Any, seed: int) -> Any:
    """Scrambled Sobol points (optuna's QMCSampler): spreads the first trials evenly."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed,
                                          warn_independent_sampling=False)


@pytest.fixture
def qmc():
    from edgetune.search._samplers import _SAMPLERS

    register_sampler("qmc", qmc_sampler)
    yield "qmc"
    _SAMPLERS.pop("qmc")


@pytest.mark.usefixtures("qmc")
class TestQmcSampler(SamplerContract):
    name = "qmc"


def test_a_study_config_naming_the_new_sampler_runs_and_is_saved(qmc, tmp_path):
    from edgetune.errors import KeyConfigError

    config = config_from_yaml("study_name: q\nn_trials: 5\nspace: {bits: [4, 8, 32], sparsity: {low: 0.0, high: 0.6}}\n"
                              "objectives: [wer, latency_ms]\nsampler: {name: qmc}\ntrain: {epochs: 1}\n")
    summary = run_study(config, tmp_path, runner=SimulatedRunner(), progress=False)
    assert summary.finished == 5 and "name: qmc" in (tmp_path / "study.yaml").read_text()
    assert open_study(config, StudyPaths(tmp_path), create=False).get_trials()[0].user_attrs["baseline"] is True
    with pytest.raises(KeyConfigError, match="sampler.name: must be one of .*grid, qmc, but got 'sobol'"):
        config_from_yaml("sampler: {name: sobol}\n")


# ============================================================================ a scheduler


class MedianStopping:
    """``median``: after epoch ``min_epochs`` and later (before the last), stop a trial whose dev
    WER is worse than the median of the WERs its peers recorded at that epoch (at least
    ``eta`` peers). State lives on the trials (``median_wer_<epoch>``), so workers share it."""

    def __init__(self, *, max_epochs: int, objectives: tuple[str, ...], min_epochs: int = 1, eta: int = 3):
        self.max_epochs, self.min_epochs, self.min_peers = max_epochs, min_epochs, eta

    def on_epoch(self, study, trial, epoch, metrics):
        if not self.min_epochs <= epoch < self.max_epochs:
            return True
        key = f"median_wer_{epoch}"
        trial.set_user_attr(key, float(metrics["wer"]))
        peers = sorted(t.user_attrs[key] for t in study.get_trials(deepcopy=False)
                       if key in t.user_attrs and t.number != trial.number)
        if len(peers) < self.min_peers:
            return True
        median = peers[len(peers) // 2] if len(peers) % 2 else (peers[len(peers) // 2 - 1] + peers[len(peers) // 2]) / 2
        return bool(metrics["wer"] <= median)


@pytest.fixture
def median():
    from edgetune.schedulers._registry import _SCHEDULERS

    register_scheduler("median", ("min_epochs", "eta"), MedianStopping)
    yield "median"
    _SCHEDULERS.pop("median")


@pytest.mark.usefixtures("median")
class TestMedianScheduler(SchedulerContract):
    name = "median"
    options = {"min_epochs": 1, "eta": 3}
