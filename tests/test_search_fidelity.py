"""Multi-fidelity in the study loop: latency-first rejection (precheck) and MO-ASHA early stops.
A rejected or stopped trial is PRUNED: never counted as complete, never on the front."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from edgetune.errors import ConfigError, TrainingError
from edgetune.report import build_report
from edgetune.search import SimulatedRunner, StudyPaths, is_finished, open_study, run_study
from edgetune.search._fidelity import TrialStopped

from _helpers import WIDE_SPACE, study_config


def study(n: int, **overrides):
    """This file's study (what differs from _helpers.STUDY): every knob searched, the default training."""
    return study_config("mf", n, **{"seed": 4, "space": WIDE_SPACE, "train": None, **overrides})


def load(config, d: Path):
    return open_study(config, StudyPaths(d), create=False)


def test_precheck_rejects_over_budget_candidates_before_training(tmp_path: Path) -> None:
    config = study(12, budgets=["latency_ms <= 300"], train={"epochs": 2}, precheck=True)
    runner = SimulatedRunner()
    summary = run_study(config, tmp_path, runner=runner, progress=False, report=build_report)
    trials = load(config, tmp_path).get_trials()
    rejected = [t for t in trials if t.state.name == "PRUNED"]
    md = (tmp_path / "report" / "pareto.md").read_text()
    assert f"{len(rejected)} rejected before training, 0 stopped early" in md
    assert rejected, "chunks of 320/640 ms exceed 300 ms of algorithmic latency alone"
    for t in rejected:
        assert t.user_attrs["knobs"]["chunk_ms"] >= 320
        assert "breaks latency_ms <= 300" in t.user_attrs["rejected_by_budget"]
        assert t.constraints["latency_ms_max"] > 0
        assert not (tmp_path / "trials" / str(t.number) / "model.onnx").exists()
    trained = {tuple(sorted(k.to_dict().items())) for k in runner.calls}
    assert all(k.chunk_ms == 160 for k in runner.calls)  # nothing over budget was trained
    assert len(trained) == len(runner.calls)
    for t in trials:
        if t.state.name == "COMPLETE":
            assert t.constraints["latency_ms_max"] <= 0
            assert t.user_attrs["precheck"]["latency_ms"] > 0
    assert summary.finished == 12 and set(summary.front) <= {t.number for t in trials if t.state.name == "COMPLETE"}


def moasha_config(n: int = 14):
    return study(n, train={"epochs": 9}, scheduler={"name": "moasha", "min_epochs": 1, "eta": 3})


def test_moasha_stops_dominated_trials_and_never_counts_them_as_complete(tmp_path: Path) -> None:
    config = moasha_config()
    runner = SimulatedRunner()
    summary = run_study(config, tmp_path, runner=runner, progress=False, report=build_report)
    trials = load(config, tmp_path).get_trials()
    stopped = [t for t in trials if t.state.name == "PRUNED"]
    assert stopped, "with eta=3, most later arrivals at a rung are not in the top third"
    for t in stopped:
        assert t.user_attrs["stopped_at_rung"] in (0, 1)
        assert t.user_attrs["stopped_at_epoch"] in (1, 3)
        assert t.values is None
        assert not (tmp_path / "trials" / str(t.number) / "model.onnx").exists()  # no export spent on it
    assert summary.complete + len(stopped) == 14 == summary.finished
    assert not set(summary.front) & {t.number for t in stopped}
    assert f"0 rejected before training, {len(stopped)} stopped early" in (tmp_path / "report" / "pareto.md").read_text()
    rows = list(csv.DictReader(open(tmp_path / "report" / "trials.csv")))
    for r in rows:
        if r["state"] == "PRUNED":
            assert r["pareto"] == "False" and r["stopped_at_rung"] != "" and r["fail_type"] == "Stopped early"
    # every stopped trial was judged against peers recorded at its rung
    for t in stopped:
        rung = t.user_attrs["stopped_at_rung"]
        peers = [p for p in trials if f"rung_{rung}" in p.user_attrs and p.number != t.number]
        assert len(peers) + 1 >= 3


class Swallowing(SimulatedRunner):
    """A runner whose trainer turns any on_epoch error into 'stop' (the pipeline's False contract)."""

    def __call__(self, knobs, out_dir, *, on_epoch=None, **kw):
        def quiet(epoch, metrics):
            try:
                return on_epoch(epoch, metrics)
            except TrialStopped:
                return False

        return super().__call__(knobs, out_dir, on_epoch=quiet if on_epoch else None, **kw)


class Wrapping(SimulatedRunner):
    """A runner that wraps every training error in TrainingError."""

    def __call__(self, knobs, out_dir, *, on_epoch=None, **kw):
        def wrapped(epoch, metrics):
            try:
                return on_epoch(epoch, metrics)
            except Exception as exc:
                raise TrainingError("training stopped") from exc

        return super().__call__(knobs, out_dir, on_epoch=wrapped if on_epoch else None, **kw)


@pytest.mark.parametrize("runner_type", [Swallowing, Wrapping])
def test_a_stop_is_pruned_however_the_runner_reports_it(tmp_path: Path, runner_type) -> None:
    config = moasha_config(10)
    summary = run_study(config, tmp_path, runner=runner_type(), progress=False)
    trials = load(config, tmp_path).get_trials()
    stopped = [t for t in trials if "stopped_at_rung" in t.user_attrs]
    assert stopped and all(t.state.name == "PRUNED" for t in stopped)
    assert not [t for t in trials if t.state.name == "FAIL"]
    if runner_type is Swallowing:  # the partial-fidelity result is kept for the record
        assert all(t.user_attrs["stopped_early"] for t in stopped)
    assert summary.finished == 10 == sum(is_finished(t) for t in trials)
    build_report(tmp_path)


def test_resume_keeps_stopped_trials_stopped(tmp_path: Path) -> None:
    config = moasha_config(8)
    run_study(config, tmp_path, runner=SimulatedRunner(), progress=False, max_new_trials=5)
    before = {t.number: t.state for t in load(config, tmp_path).get_trials()}
    run_study(config, tmp_path, runner=SimulatedRunner(), progress=False)
    after = load(config, tmp_path).get_trials()
    assert all(after[n].state == s for n, s in before.items())
    assert sum(is_finished(t) for t in after) == 8


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"train": {"epochs": 2}, "scheduler": {"name": "moasha", "min_epochs": 2}}, "scheduler.min_epochs"),
        ({"scheduler": {"name": "hyperband"}}, "scheduler.name"),
        ({"scheduler": {"name": "moasha", "eta": 1}}, "scheduler.eta"),
        ({"precheck": True}, "precheck"),
        ({"budgets": ["wer <= 0.3"], "precheck": True}, "precheck"),
    ],
)
def test_fidelity_config_errors(overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        study(3, **overrides)
    assert str(e.value).startswith(key + ":")
