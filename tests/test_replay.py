"""benchmarks/replay.py on a small synthetic table: schema checks, cost accounting, invariants.

The table here is SYNTHETIC (``synthetic_table``): these tests check the harness, not edgetune.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edgetune.errors import ConfigError, DataError
from edgetune.report._pareto import hypervolume

REPO = Path(__file__).resolve().parents[1]
SMALL_GRID = dict(bits=(8, 32), sparsity=(0.0, 0.5), depth_multiplier=(0.5, 1.0), chunk_ms=(160, 640))


def _load_replay():
    spec = importlib.util.spec_from_file_location("replay", REPO / "benchmarks" / "replay.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["replay"] = mod
    spec.loader.exec_module(mod)
    return mod


R = _load_replay()


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("table") / "small-synthetic.csv"
    R.synthetic_table(seed=1, epochs=4, **SMALL_GRID).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def replay_out(small_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One end-to-end run of the script: 3 seeds, all strategies, long enough to exhaust the grid."""
    out = tmp_path_factory.mktemp("out")
    cmd = [sys.executable, str(REPO / "benchmarks" / "replay.py"), "--table", str(small_csv), "--out", str(out),
           "--seeds", "0-2", "--horizon", "3", "--min-epochs", "1", "--eta", "2", "--min-peers", "2",
           "--population-size", "4", "--nsga2-population-size", "4"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"dir": out, "json": json.loads((out / "replay.json").read_text()), "stdout": proc.stdout}


def test_outputs_are_written_and_declare_what_they_measured(replay_out: dict) -> None:
    out, res = replay_out["dir"], replay_out["json"]
    assert (out / "replay.md").read_text().startswith("# Replay")
    assert (out / "replay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert res["table"]["kind"] == "measured" and res["table"]["rows"] == 16 and res["table"]["epochs"] == 4
    ref = res["problem"]["reference_point"]
    assert ref["latency_ms"] > 0 and ref["test_wer"] > 0 and res["problem"]["reference_rule"]
    assert set(res["curves"]) == set(R.STRATEGIES)
    for cp in ("0.15", "0.25"):
        pv = res["checkpoints"][cp]["p_value_edgetune_greater"]
        assert set(pv) == set(R.STRATEGIES) - {"edgetune"} and all(0.0 <= p <= 1.0 for p in pv.values())
    assert isinstance(res["goal"]["met"], bool) and set(res["goal"]["p_values"]) == set(R.BASELINES)
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_hv_fraction_is_monotone_bounded_and_reaches_one_when_everything_is_trained(replay_out: dict) -> None:
    res = replay_out["json"]
    for strategy, curve in res["curves"].items():
        f = np.asarray(curve["per_seed"])
        assert np.all(np.diff(f, axis=1) >= 0), strategy
        assert np.all((f >= 0) & (f <= 1 + 1e-12)), strategy
        assert np.all(np.asarray(curve["q25"]) <= np.asarray(curve["median"]) + 1e-12)
        assert np.all(np.asarray(curve["median"]) <= np.asarray(curve["q75"]) + 1e-12)
    for strategy in R.BASELINES:  # a baseline that exhausted the grid trained every feasible config
        for run, f in zip(res["runs"][strategy], res["curves"][strategy]["per_seed"]):
            if run["end"] == "grid exhausted":
                assert f[-1] == pytest.approx(1.0, abs=1e-12)
    assert any(r["end"] == "grid exhausted" for r in res["runs"]["random"])


@pytest.fixture(scope="module")
def small(small_csv: Path):
    table = R.load_table(small_csv)
    budgets = R.Budgets(max_latency_ms=float(table.df["latency_ms"].median()))
    return table, R.make_problem(table, budgets)


@pytest.mark.parametrize("strategy", R.STRATEGIES)
def test_costs_and_front_are_accounted_from_the_table(small, strategy: str) -> None:
    table, problem = small
    settings = R.Settings(population_size=4, eta=2, min_epochs=1, min_peers=2, nsga2_population_size=4)
    run = R.simulate(strategy, table, problem, seed=5, settings=settings, horizon=10 * table.total_cost)
    sched = R.MOASHA(min_epochs=1, max_epochs=table.epochs, eta=2)
    clock, front = 0.0, []
    assert len(run.costs) == len(run.trials) + 1 and run.costs[0] == 0.0
    for i, t in enumerate(run.trials):
        row = table.row(t["key"])
        if t["outcome"] == "full":
            expected = row["train_gpu_seconds"] + row["measure_seconds"]
        elif t["outcome"] == "resumed":  # a stopped config retrained from scratch, latency already known
            assert strategy == "edgetune" and t["feasible"]
            expected = row["train_gpu_seconds"]
        elif t["outcome"] == "rejected":  # latency-first: only the measurement was paid
            assert strategy in R.LATENCY_FIRST and not t["feasible"]
            expected = row["measure_seconds"]
        else:  # stopped at a rung: only the epochs it ran
            assert strategy == "edgetune" and t["epochs"] in sched.rungs()
            expected = row["measure_seconds"] + t["epochs"] * row["epoch_gpu_seconds"]
        assert t["cost"] == pytest.approx(expected)
        clock += expected
        assert run.costs[i + 1] == pytest.approx(clock)
        if t["outcome"] in ("full", "resumed") and t["feasible"]:  # only fully trained, feasible configs count
            front.append([row["test_wer"], row["latency_ms"]])
        hv = hypervolume(np.array(front), problem.reference) if front else 0.0
        assert run.hvs[i + 1] == pytest.approx(hv, rel=1e-12, abs=1e-12)
    assert sum(run.spent.values()) == pytest.approx(run.costs[-1])
    keys = [t["key"] for t in run.trials if t["outcome"] != "resumed"]
    assert len(keys) == len(set(keys))  # a configuration is evaluated once ...
    resumed = [t["key"] for t in run.trials if t["outcome"] == "resumed"]
    stopped = {t["key"] for t in run.trials if t["outcome"] == "stopped"}
    assert len(resumed) == len(set(resumed)) and set(resumed) <= stopped  # ... and retrained at most once
    if strategy != "edgetune":
        assert run.stopped == 0
    if strategy in R.BASELINES:
        assert run.rejected == 0


@pytest.mark.parametrize("seed", [2, 3])
def test_edgetune_ends_with_every_stopped_config_retrained(small, seed: int) -> None:
    """Once the sampler has nothing new, stopped configs are retrained: nothing feasible it saw is
    left off the front, and if it saw the whole grid its front is the true front."""
    table, problem = small
    settings = R.Settings(population_size=4, eta=2, min_epochs=1, min_peers=2)
    run = R.simulate("edgetune", table, problem, seed=seed, settings=settings, horizon=10 * table.total_cost)
    assert run.stopped > 0 and run.resumed == run.stopped
    seen = [table.row(t["key"]) for t in run.trials if t["feasible"] and t["outcome"] != "resumed"]
    assert run.hvs[-1] == pytest.approx(hypervolume(np.array([[r["test_wer"], r["latency_ms"]] for r in seen]),
                                                    problem.reference), abs=1e-12)
    if run.stop_reason == "grid exhausted":
        assert run.hvs[-1] == pytest.approx(problem.true_hv, abs=1e-12)
        assert run.full + run.rejected == len(table.df)
    else:
        assert run.stop_reason == "sampler repeats itself"


def test_edgetune_without_resume_never_retrains(small) -> None:
    table, problem = small
    settings = R.Settings(population_size=4, eta=2, min_epochs=1, min_peers=2, resume=False)
    run = R.simulate("edgetune", table, problem, seed=2, settings=settings, horizon=10 * table.total_cost)
    assert run.stopped > 0 and run.resumed == 0
    assert all(t["outcome"] != "resumed" for t in run.trials)


def test_edgetune_without_rungs_or_budgets_trains_everything(small) -> None:
    table, _ = small
    problem = R.make_problem(table, R.Budgets())
    settings = R.Settings(population_size=4, min_epochs=table.epochs)  # no rung below max epochs
    run = R.simulate("edgetune", table, problem, seed=2, settings=settings, horizon=10 * table.total_cost)
    assert run.stop_reason == "grid exhausted" and run.full == len(table.df)
    assert run.hvs[-1] == pytest.approx(problem.true_hv, abs=1e-12)


def _write(tmp_path: Path, df: pd.DataFrame) -> Path:
    p = tmp_path / "t.csv"
    df.to_csv(p, index=False)
    return p


def test_schema_errors_name_the_column_and_the_fix(tmp_path: Path) -> None:
    good = R.synthetic_table(seed=0, epochs=3, **SMALL_GRID)
    with pytest.raises(DataError, match=r"missing \['measure_seconds'\].*Fix: the columns are"):
        R.load_table(_write(tmp_path, good.drop(columns=["measure_seconds"])))
    with pytest.raises(DataError, match=r"missing \['dev_wer_4'\]"):
        R.load_table(_write(tmp_path, good.assign(epochs=4)))
    with pytest.raises(DataError, match="one integer >= 1 shared by every row"):
        R.load_table(_write(tmp_path, good.assign(epochs=[3] * 15 + [2])))
    bad = good.copy()
    bad.loc[5, "latency_ms"] = np.nan
    with pytest.raises(DataError, match=r"'latency_ms' must hold finite numbers, but row 7"):
        R.load_table(_write(tmp_path, bad))
    with pytest.raises(DataError, match="appears 2 times"):
        R.load_table(_write(tmp_path, pd.concat([good, good.iloc[[0]]])))
    with pytest.raises(DataError, match="not a full grid.*missing e.g."):
        R.load_table(_write(tmp_path, good.iloc[1:]))
    with pytest.raises(DataError, match="'train_gpu_seconds' must be > 0"):
        R.load_table(_write(tmp_path, good.assign(train_gpu_seconds=0.0)))
    with pytest.raises(DataError, match="no such table"):
        R.load_table(tmp_path / "absent.csv")
    assert R.load_table(_write(tmp_path, good)).epochs == 3


def test_cli_refuses_synthetic_results_in_reports_and_overlapping_seeds(small_csv: Path) -> None:
    with pytest.raises(ConfigError, match="SYNTHETIC"):
        R.main(["--synthetic", "--out", str(REPO / "reports" / "replay")])
    with pytest.raises(ConfigError, match="overlap"):
        R.main(["--table", str(small_csv), "--tune", "--seeds", "0-3", "--tune-seeds", "3-5"])


def test_tuning_picks_from_its_grid_on_tuning_seeds_only(small) -> None:
    table, problem = small
    grid = {"sampler": ("nsga2",), "population_size": (4,), "eta": (2, 3), "min_epochs": (1, 2), "min_peers": (2,)}
    chosen, info = R.tune(table, problem, [100, 101], R.Settings(), 1.0, grid=grid)
    assert info["seeds"] == [100, 101] and len(info["edgetune_candidates"]) == 4
    best = max(info["edgetune_candidates"], key=lambda c: c["score"])
    assert (chosen.eta, chosen.min_epochs) == (best["settings"]["eta"], best["settings"]["min_epochs"])
    assert chosen.nsga2_population_size in R.BASELINE_POPULATIONS
    assert [c["nsga2_population_size"] for c in info["nsga2_candidates"]] == list(R.BASELINE_POPULATIONS)


def test_committed_results_reproduce_from_the_frozen_measured_table() -> None:
    """reports/replay/replay.json was computed from the committed H100 table: the table passes
    the schema checks, and re-running two of its seeds gives the same numbers."""
    res = json.loads((REPO / "reports" / "replay" / "replay.json").read_text())
    table = R.load_table(REPO / res["table"]["source"])
    assert len(table.df) == res["table"]["rows"] == 144 and table.total_cost == pytest.approx(res["table"]["total_cost_gpu_seconds"])
    problem = R.make_problem(table, R.Budgets(**res["problem"]["budgets"]))
    assert list(problem.reference) == pytest.approx(
        [res["problem"]["reference_point"][k] for k in ("test_wer", "latency_ms")])
    settings = R.Settings(**res["settings"])
    runs = R.run_all(table, problem, [0, 1], settings, 0.25, strategies=["edgetune", "nsga2"])
    at = np.array([0.15 * table.total_cost])
    for strategy in ("edgetune", "nsga2"):
        got = R.fractions(runs[strategy], problem, at)[:, 0]
        assert got == pytest.approx(res["checkpoints"]["0.15"][strategy]["values"][:2], abs=1e-9), strategy
