"""Study config: round trip, defaults, and errors that name the key, the file and line, and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetune.errors import ConfigError
from edgetune.search import (
    Choice,
    Fixed,
    FloatRange,
    SearchSpace,
    StudyConfig,
    config_from_yaml,
    config_to_yaml,
    load_config,
)

REPO = Path(__file__).resolve().parents[1]

FULL = """
version: 1
study_name: demo
n_trials: 7
seed: 3
dataset: smoke
space:
  bits: [4, 8, 32]
  sparsity: {low: 0.0, high: 0.6, step: 0.1}
  depth_multiplier: {low: 0.25, high: 1.0}
  chunk_ms: [160, 320]
  lr: {low: 1e-4, high: 1e-2, log: true}
  specaugment: [true, false]
  observer: minmax
objectives: [worst_group_wer, rtf, size_bytes]
budgets: ["latency_ms <= 20", "size_bytes <= 5e6"]
target: [local, "ssh://pi@board"]
bench: {threads: 2, runs: 50, warmup: 5}
sampler: {name: tpe, n_startup_trials: 3, enqueue_baseline: false}
train: {epochs: 2, batch_size: 8}
report: {reference_point: {worst_group_wer: 1.0, rtf: 1.0, size_bytes: 1.0e7}}
"""


def test_round_trip_through_dict_and_yaml() -> None:
    cfg = config_from_yaml(FULL)
    assert config_from_yaml(config_to_yaml(cfg)) == cfg
    assert StudyConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.diff(config_from_yaml(config_to_yaml(cfg))) == []


def test_parsed_values() -> None:
    cfg = config_from_yaml(FULL)
    s = cfg.space.specs
    assert s["bits"] == Choice("bits", (4, 8, 32))
    assert s["sparsity"] == FloatRange("sparsity", 0.0, 0.6, 0.1, False)
    assert s["lr"] == FloatRange("lr", 1e-4, 1e-2, None, True)  # "1e-4" is a YAML string: accepted as a number
    assert s["observer"] == Fixed("observer", "minmax")
    assert s["prune_schedule"] == Fixed("prune_schedule", "oneshot")  # absent -> Knobs default
    assert set(cfg.space.searched) == {"bits", "sparsity", "depth_multiplier", "chunk_ms", "lr", "specaugment"}
    assert cfg.target == ("local", "ssh://pi@board") and cfg.primary_target == "local"
    assert [str(b) for b in cfg.budgets] == ["latency_ms <= 20", "size_bytes <= 5e+06"]
    assert cfg.train.epochs == 2 and cfg.train.batch_size == 8


def test_defaults_are_the_brief_space() -> None:
    cfg = StudyConfig()
    s = cfg.space.specs
    assert s["bits"] == Choice("bits", (4, 8, 16, 32))
    assert s["sparsity"] == FloatRange("sparsity", 0.0, 0.9)
    assert s["depth_multiplier"] == FloatRange("depth_multiplier", 0.25, 1.0)
    assert s["chunk_ms"] == Choice("chunk_ms", (80, 160, 320, 640))
    assert cfg.sampler.name.value == "nsga2" and cfg.sampler.enqueue_baseline


def test_baseline_is_least_compressed_point_inside_the_space() -> None:
    space = SearchSpace.from_dict(
        {"bits": [4, 8, 16], "sparsity": {"low": 0.2, "high": 0.6, "step": 0.2},
         "depth_multiplier": {"low": 0.25, "high": 0.75}, "chunk_ms": [160, 640]}
    )
    base = space.baseline_params()
    assert base == {"bits": 16, "sparsity": 0.2, "depth_multiplier": 0.75, "chunk_ms": 160}
    assert space.contains(base)


@pytest.mark.parametrize(
    "text, key, words",
    [
        ("space:\n  sparsity: {low: 0.0, high: 0.95}\n", "space.sparsity.high", ["0.9", "0.95"]),
        ("space:\n  depth_multiplier: {low: 0.1, high: 1.0}\n", "space.depth_multiplier.low", ["0.25"]),
        ("space:\n  sparsity: {low: 0.5, high: 0.2}\n", "space.sparsity.high", ["low <= high"]),
        ("space:\n  bits: [8, 12]\n", "space.bits[1]", ["4, 8, 16, 32", "12"]),
        ("space:\n  chunk_ms: [160, 100]\n", "space.chunk_ms[1]", ["multiple of 40", "Fix"]),
        ("space:\n  chunk_ms: {low: 80, high: 640}\n", "space.chunk_ms", ["not a range"]),
        ("space:\n  bitz: [8]\n", "space.bitz", ["valid knobs", "bits"]),
        ("space:\n  sparsity: {low: 0, hi: 0.5}\n", "space.sparsity", ["hi", "low, high, step, log"]),
        ("space:\n  sparsity: {low: 0, high: 0.5, log: true}\n", "space.sparsity.log", ["log"]),
        ("train:\n  epochs: 0\n", "train.epochs", [">= 1"]),
        ("train:\n  epoch: 3\n", "train.epoch", ["valid keys", "epochs"]),
        ("objectives: [latency_ms, wer]\n", "objectives[0]", ["wer, worst_group_wer"]),
        ("objectives: [wer]\n", "objectives", ["2 or 3"]),
        ("budgets: ['latency < 3']\n", "budgets[0]", ["latency_ms <= 20"]),
        ("budgets: ['latncy_ms <= 3']\n", "budgets[0]", ["valid metrics", "latency_ms"]),
        ("sampler: {name: nsgaii}\n", "sampler.name", ["nsga2, nsga3, tpe, gp, random, grid"]),
        ("sampler: {population_size: 1}\n", "sampler.population_size", [">= 2"]),
        ("sampler: {name: grid}\n", "space.sparsity", ["step"]),
        ("bench: {threads: 0}\n", "bench.threads", [">= 1"]),
        ("bench: {thread: 2}\n", "bench.thread", ["threads, runs, warmup"]),
        ("target: 'ftp://x'\n", "target", ["ssh", "adb"]),
        ("n_trials: 0\n", "n_trials", [">= 1"]),
        ("version: 2\n", "version", ["1"]),
        ("report: {reference_point: {wer: 1.0}}\n", "report.reference_point", ["latency_ms"]),
        ("studyname: x\n", "studyname", ["valid keys", "study_name"]),
    ],
)
def test_errors_name_the_key(text: str, key: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as e:
        config_from_yaml(text, "cfg.yaml")
    msg = str(e.value)
    assert msg.startswith(key + ":"), msg
    assert "(in cfg.yaml" in msg, msg  # the file (and line, where the key is in it)
    for w in words:
        assert w in msg, (w, msg)


def test_error_line_number_points_at_the_key() -> None:
    text = "study_name: x\nspace:\n  bits: [8]\n  sparsity:\n    low: 0.0\n    high: 2.0\n"
    with pytest.raises(ConfigError, match=r"space\.sparsity\.high: .*cfg\.yaml:6\)"):
        config_from_yaml(text, "cfg.yaml")


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("study_name: x\nspace:\n  bits: [8, 32\n  sparsity: 0.1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(p) in str(e.value) and "invalid YAML" in str(e.value)
    assert f"{p}:" in str(e.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_fixed_knob_forms() -> None:
    cfg = config_from_yaml("space:\n  bits: 8\n  sparsity: {value: 0.5}\n  chunk_ms: [320]\n")
    assert cfg.space.specs["bits"] == Fixed("bits", 8)
    assert cfg.space.specs["sparsity"] == Fixed("sparsity", 0.5)
    assert cfg.space.specs["chunk_ms"] == Fixed("chunk_ms", 320)
    assert "bits" not in cfg.space.searched


def test_diff_names_changed_keys() -> None:
    a = config_from_yaml(FULL)
    b = config_from_yaml(FULL.replace("high: 0.6", "high: 0.7").replace("n_trials: 7", "n_trials: 20"))
    d = a.diff(b)
    assert d == ["space.sparsity.high: 0.6 -> 0.7"]  # n_trials may change on resume


@pytest.mark.parametrize("name", ["smoke.yaml", "full.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    cfg = load_config(REPO / "configs" / name)
    assert config_from_yaml(config_to_yaml(cfg)) == cfg


def test_storage_password_is_never_saved(tmp_path: Path) -> None:
    from edgetune.errors import StudyError
    from edgetune.search import load_study_dir, save_config

    cfg = config_from_yaml("storage: postgresql://me:s3cret@db.example/edgetune\n")
    text = config_to_yaml(cfg)
    assert "s3cret" not in text and "postgresql://me:***@db.example/edgetune" in text
    assert cfg.diff(config_from_yaml(text)) == []  # a saved (masked) config still matches
    save_config(cfg, tmp_path / "study.yaml")
    with pytest.raises(StudyError, match="--storage"):
        load_study_dir(tmp_path)
