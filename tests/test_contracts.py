"""Every registered renderer, sampler and scheduler through its contract suite (edgetune.testing),
and every registry's refusal of an unknown name. Transports run theirs in test_bench_*.py."""

from __future__ import annotations

import pytest

from edgetune.errors import ConfigError, KeyConfigError
from edgetune.testing import RendererContract, SamplerContract, SchedulerContract

# ---- renderers ------------------------------------------------------------------------------


class TestHtmlRenderer(RendererContract):
    name = "html"
    volatile = (r"Generated [0-9T:+-]+",)  # the page says when it was made


class TestStaticHtmlRenderer(RendererContract):
    name = "html"
    options = {"interactive": False}
    volatile = (r"Generated [0-9T:+-]+",)


class TestMarkdownRenderer(RendererContract):
    name = "markdown"


class TestCsvRenderer(RendererContract):
    name = "csv"


class TestPngRenderer(RendererContract):
    name = "png"


# ---- samplers -------------------------------------------------------------------------------


class TestNsga2Sampler(SamplerContract):
    name = "nsga2"
    options = {"population_size": 4}  # a second generation within the proposals


class TestNsga3Sampler(SamplerContract):
    name = "nsga3"
    options = {"population_size": 4}


class TestTpeSampler(SamplerContract):
    name = "tpe"
    options = {"n_startup_trials": 3}


@pytest.mark.slow
class TestGpSampler(SamplerContract):
    name = "gp"
    options = {"n_startup_trials": 3}


class TestRandomSampler(SamplerContract):
    name = "random"


class TestGridSampler(SamplerContract):
    name = "grid"


# ---- schedulers -----------------------------------------------------------------------------


class TestMoashaScheduler(SchedulerContract):
    name = "moasha"
    options = {"min_epochs": 1, "eta": 3}


def test_the_none_scheduler_schedules_nothing() -> None:
    from edgetune.schedulers import make_scheduler

    assert make_scheduler("none", {"min_epochs": 1}, max_epochs=9, objectives=("wer", "latency_ms")) is None


def test_every_axis_is_registered() -> None:
    from edgetune.bench import runners, transports
    from edgetune.model import families
    from edgetune.report import renderers
    from edgetune.schedulers import schedulers
    from edgetune.search import samplers

    assert transports()[:3] == ["local", "ssh", "adb"] and runners()[:2] == ["python", "perf_test"]
    assert renderers()[:4] == ["html", "markdown", "csv", "png"]
    assert samplers()[:6] == ["nsga2", "nsga3", "tpe", "gp", "random", "grid"]
    assert schedulers()[:2] == ["none", "moasha"] and "conformer_lite" in families()


def test_an_unknown_name_lists_the_registered_ones(tmp_path) -> None:
    from edgetune.bench import bench_model, get_runner
    from edgetune.report import build_report, get_renderer
    from edgetune.schedulers import get_scheduler
    from edgetune.search import config_from_yaml, get_sampler

    with pytest.raises(ConfigError, match="runner must be one of python, perf_test.*got 'tflite'"):
        get_runner("tflite")
    with pytest.raises(ConfigError, match="runner must be one of python, perf_test"):
        bench_model(tmp_path / "m.onnx", runner="tflite")  # the name is checked before the file is read
    with pytest.raises(ConfigError, match="unknown report format 'pdf'; registered formats are html, markdown, csv, png"):
        get_renderer("pdf")
    with pytest.raises(ConfigError, match="'pdf'.*html, markdown, csv, png"):
        build_report(tmp_path, formats=["pdf"])  # before the study is opened
    with pytest.raises(ConfigError, match="at least one report format"):
        build_report(tmp_path, formats=[])
    with pytest.raises(KeyConfigError, match="sampler.name: must be one of nsga2, nsga3, tpe, gp, random, grid"):
        get_sampler("cmaes")
    with pytest.raises(ConfigError, match="unknown scheduler 'hyperband'; registered schedulers are none, moasha"):
        get_scheduler("hyperband")
    with pytest.raises(KeyConfigError, match="scheduler.name: must be one of none, moasha, but got 'hyperband'"):
        config_from_yaml("scheduler: {name: hyperband}\n")


def test_the_shared_registry_keeps_order_replaces_and_names_the_registered_ones() -> None:
    from edgetune._registry import Registry

    registry = Registry(lambda name, names: LookupError(f"{name!r} is not one of {names}"))
    for name, entry in (("b", 1), ("a", 2), ("b", 3)):
        assert registry.register(name, entry) == entry
    assert registry.names() == ["b", "a"] and registry.values() == [3, 2] and registry.get("b") == 3
    with pytest.raises(LookupError, match=r"'c' is not one of \['b', 'a'\]"):
        registry.get("c")
    with pytest.raises(LookupError, match="None is not one of"):
        registry.get(None)
    assert registry.pop("a") == 2 and "a" not in registry and "b" in registry and registry.names() == ["b"]


def test_registrations_refuse_malformed_entries() -> None:
    from edgetune.bench import register_runner
    from edgetune.report import register_renderer
    from edgetune.schedulers import register_scheduler
    from edgetune.search import register_sampler

    with pytest.raises(ValueError, match="runner name"):
        register_runner("no good", (), object)
    with pytest.raises(ValueError, match="already written by 'csv'"):
        register_renderer("csv2", ("trials.csv",), lambda data, folder, options: None)
    with pytest.raises(ValueError, match="plain file names"):
        register_renderer("escape", ("../x.txt",), lambda data, folder, options: None)
    with pytest.raises(ValueError, match=r"options \['temperature'\] are not sampler settings"):
        register_sampler("hot", lambda config, seed: None, options=("temperature",))
    with pytest.raises(ValueError, match=r"options \['patience'\] are not scheduler settings"):
        register_scheduler("patient", ("patience",), lambda **kw: None)
