"""benchmarks/replay.py on a small synthetic table: schema checks, cost accounting, invariants,
and proof that every run is the product's ``run_study`` with ``TableRunner``.

The table here is SYNTHETIC (``synthetic_table``): these tests check the harness, not edgetune.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edgetune.errors import ConfigError, DataError
from edgetune._pareto import hypervolume

REPO = Path(__file__).resolve().parents[1]
SMALL_GRID = dict(bits=(8, 32), sparsity=(0.0, 0.5), depth_multiplier=(0.5, 1.0), chunk_ms=(160, 640))


def _load_replay():
    # replay.py imports its siblings (replay_stats, replay_syne) as a script does: from its own directory
    if str(REPO / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO / "benchmarks"))
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


# every strategy but GP (Optuna's GP sampler takes seconds a trial on this CPU; it has its own tests below)
E2E_STRATEGIES = [s for s in R.available_strategies() if s != "gp"]


@pytest.fixture(scope="module")
def replay_out(small_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One end-to-end run of the script: two budgets, 2 seeds, long enough to exhaust the grid."""
    out = tmp_path_factory.mktemp("out")
    cmd = [sys.executable, str(REPO / "benchmarks" / "replay.py"), "--table", str(small_csv), "--out", str(out),
           "--seeds", "0-1", "--horizon", "3", "--min-epochs", "1", "--eta", "2", "--min-peers", "2",
           "--population-size", "4", "--nsga2-population-size", "4", "--strategies", ",".join(E2E_STRATEGIES),
           "--latency-budgets", "tight=p25,loose=p50", "--jobs", "2", "--n-trials-per-config", "6"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"dir": out, "json": json.loads((out / "replay.json").read_text()), "stdout": proc.stdout}


def test_outputs_are_written_and_declare_what_they_measured(replay_out: dict, small_csv: Path) -> None:
    out, report = replay_out["dir"], replay_out["json"]
    assert report["schema"] == 2 and list(report["budgets"]) == ["tight", "loose"]
    md = (out / "replay.md").read_text()
    assert md.startswith("# Replay") and "## Budget `tight`" in md and "## Budget `loose`" in md and "## Not run" in md
    assert any("Resume of stopped trials" in n for n in report["not_run"])
    assert any("multi_metric_pruner" in n for n in report["not_run"])
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "replay.json").stat().st_mode & 0o777 == 0o666 & ~umask   # not mkstemp's 0600
    lat = pd.read_csv(small_csv)["latency_ms"]
    for name, q in (("tight", 25), ("loose", 50)):
        res = report["budgets"][name]
        assert res["problem"]["budgets"] == [f"latency_ms <= {float(np.percentile(lat, q))!r}"]
        for png in (f"replay-{name}.png", f"eaf-{name}.png"):
            assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert res["table"]["kind"] == "measured" and res["table"]["rows"] == 16 and res["table"]["epochs"] == 4
        ref = res["problem"]["reference_point"]
        assert ref["latency_ms"] > 0 and ref["test_wer"] > 0 and res["problem"]["reference_rule"]
        assert set(res["curves"]) == set(E2E_STRATEGIES)
        assert list(res["checkpoints"]) == ["0.1", "0.15", "0.25", "0.5"] and list(res["attainment"]) == ["0.15", "0.25"]
        for cp in res["checkpoints"].values():
            pv = cp["p_value_edgetune_greater"]
            assert set(pv) == set(E2E_STRATEGIES) - {"edgetune"} and all(0.0 <= p <= 1.0 for p in pv.values())
            for s in E2E_STRATEGIES:
                assert cp[s]["iqr"] == pytest.approx(cp[s]["q75"] - cp[s]["q25"]) and len(cp[s]["values"]) == 2
        for s in E2E_STRATEGIES:  # surfaces: 25 % attains at least what 50 % and 75 % attain
            hv = [res["attainment"]["0.25"][s][q]["hv_fraction"] for q in ("25", "50", "75")]
            assert 1 + 1e-12 >= hv[0] >= hv[1] >= hv[2] >= 0, s
        baselines = [b for b in R.BASELINES if b in E2E_STRATEGIES]
        assert isinstance(res["goal"]["met"], bool) and set(res["goal"]["p_values"]) == set(baselines)
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_hv_fraction_is_monotone_bounded_and_reaches_one_when_everything_is_trained(replay_out: dict) -> None:
    for res in replay_out["json"]["budgets"].values():
        for strategy, curve in res["curves"].items():
            f = np.asarray(curve["per_seed"])
            assert np.all(np.diff(f, axis=1) >= 0), strategy
            assert np.all((f >= 0) & (f <= 1 + 1e-12)), strategy
            assert np.all(np.asarray(curve["q25"]) <= np.asarray(curve["median"]) + 1e-12)
            assert np.all(np.asarray(curve["median"]) <= np.asarray(curve["q75"]) + 1e-12)
        for strategy in ("motpe", "nsga2", "random"):  # a baseline that trained the whole grid has the true front
            for run, f in zip(res["runs"][strategy], res["curves"][strategy]["per_seed"]):
                if run["fully_trained"] == 16:
                    assert f[-1] == pytest.approx(1.0, abs=1e-12)
        assert any(r["fully_trained"] == 16 for r in res["runs"]["random"])


@pytest.fixture(scope="module")
def small(small_csv: Path):
    table = R.load_table(small_csv)
    budgets = R.make_budgets(max_latency_ms=float(table.df["latency_ms"].median()))
    return table, R.make_problem(table, budgets)


SMALL_SETTINGS = R.Settings(population_size=4, eta=2, min_epochs=1, min_peers=2, nsga2_population_size=4)


def test_every_run_goes_through_run_study(small, monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay has no loop of its own: each run is run_study calls (one per worker) on a study
    whose trials carry what the product writes (knobs, precheck, MO-ASHA rungs, constraints)."""
    import edgetune.search._study as study_mod

    calls = []
    real = study_mod.run_study

    def spy(config, study_dir, **kw):
        calls.append((config.study_name, type(kw["runner"]).__name__))
        return real(config, study_dir, **kw)

    monkeypatch.setattr(study_mod, "run_study", spy)
    table, problem = small
    run = R.simulate("edgetune", table, problem, seed=1, settings=replace(SMALL_SETTINGS, workers=2),
                     horizon=0.5 * table.total_cost)
    assert calls == [("replay-edgetune-1", "TableRunner")] * 2
    assert run.stopped > 0 and run.rejected > 0 and run.full > 0
    assert "replay_clock" not in R.__dict__ and not hasattr(R, "_Sim") and not hasattr(R, "MOASHA")


@pytest.mark.parametrize("strategy", R.available_strategies())
def test_costs_and_front_are_accounted_from_the_table(small, strategy: str, tmp_path: Path) -> None:
    table, problem = small
    run = R.simulate(strategy, table, problem, seed=5, settings=SMALL_SETTINGS, horizon=10 * table.total_cost,
                     study_dir=tmp_path)
    assert run.stop_reason == "n_trials"  # the horizon is never reached: every trial finished
    spent, front = 0.0, []
    for t in run.trials:
        row = table.row(t["key"])
        if t["outcome"] == "duplicate":  # answered from the earlier trial, no cost
            continue
        if t["outcome"] == "full":
            spent += row["train_gpu_seconds"] + row["measure_seconds"]
            if t["feasible"]:
                front.append([row["test_wer"], row["latency_ms"]])
        elif t["outcome"] == "rejected":  # latency-first: only the measurement was paid
            assert strategy in R.LATENCY_FIRST and not t["feasible"]
            spent += row["measure_seconds"]
        else:  # stopped at a rung: the measurement and the epochs it ran
            assert strategy in R.EARLY_STOPPING and t["outcome"] == "stopped" and 1 <= t["epochs"] < table.epochs
            spent += row["measure_seconds"] + min(t["epochs"] * row["epoch_gpu_seconds"], row["train_gpu_seconds"])
    assert run.gpu_seconds == pytest.approx(spent)
    assert run.hvs[-1] == pytest.approx(hypervolume(np.array(front), problem.reference) if front else 0.0, abs=1e-12)
    keys = [t["key"] for t in run.trials if t["outcome"] in ("full", "rejected")]
    if strategy == "syne-moasha":  # Syne Tune's tuner trains a configuration proposed again once more
        assert run.duplicates == 0 and run.repeats == len(run.trials) - len({t["key"] for t in run.trials}) > 0
    else:
        assert len(keys) == len(set(keys))  # trained or rejected once; repeats are duplicates
    if strategy not in R.EARLY_STOPPING:
        assert run.stopped == 0
    if strategy not in R.LATENCY_FIRST:
        assert run.rejected == 0
    if strategy in ("edgetune", "edgetune-no-precheck", "syne-moasha"):
        assert run.stopped > 0  # their rungs stop something on this table


def test_k_workers_share_one_clock_deterministically(small) -> None:
    table, problem = small
    s = replace(SMALL_SETTINGS, workers=3)
    a = R.simulate("edgetune", table, problem, seed=2, settings=s, horizon=0.6 * table.total_cost)
    b = R.simulate("edgetune", table, problem, seed=2, settings=s, horizon=0.6 * table.total_cost)
    assert a.trials == b.trials and a.hvs == b.hvs and a.costs == b.costs
    assert a.stop_reason == "budget" and a.interrupted >= 1  # trials in flight at the end are interrupted
    assert a.gpu_seconds <= 0.6 * table.total_cost + 1e-6
    ends = sorted(t["finished_at"] for t in a.trials if t["outcome"] == "full")
    one = R.simulate("edgetune", table, problem, seed=2, settings=SMALL_SETTINGS, horizon=0.6 * table.total_cost)
    assert ends[-1] < max(t["finished_at"] for t in one.trials if t["outcome"] == "full")  # 3 GPUs: sooner


def test_a_replay_resumes_where_its_budget_ended(small, tmp_path: Path) -> None:
    """Two calls with half the budget each: the clock continues, interrupted trials are queued again
    (retry_of) and nothing finished is trained twice."""
    from edgetune.search import TableRunner, load_study_dir

    table, problem = small
    config = R.study_config("edgetune", table, problem, 3, SMALL_SETTINGS)
    first = TableRunner(table.rows, table.epochs).replay(config, tmp_path, gpu_seconds=0.3 * table.total_cost)
    assert first.end == "budget"
    second = TableRunner(table.rows, table.epochs).replay(config, tmp_path, gpu_seconds=0.3 * table.total_cost)
    assert second.clock_start == pytest.approx(first.clock_end) and second.clock_end > first.clock_end
    _, study = load_study_dir(tmp_path)
    trials = study.get_trials(deepcopy=False)
    interrupted = [t.number for t in trials if t.user_attrs.get("interrupted")]
    retried = [t.user_attrs.get("retry_of") for t in trials]
    assert interrupted and interrupted[0] in retried
    done = [tuple(sorted(t.user_attrs["knobs"].items())) for t in trials
            if t.state.name == "COMPLETE" and "duplicate_of" not in t.user_attrs]
    assert len(done) == len(set(done))


def test_edgetune_without_rungs_or_budgets_trains_everything(small) -> None:
    table, _ = small
    problem = R.make_problem(table, ())
    settings = R.Settings(population_size=4, min_epochs=table.epochs, n_trials_per_config=10)  # no rung
    run = R.simulate("edgetune", table, problem, seed=2, settings=settings, horizon=10 * table.total_cost)
    assert run.full == len(table.df) and run.stopped == run.rejected == 0
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
    """reports/replay/one-loop/replay.json was computed from the committed H100 table through
    run_study: the table passes the schema checks, and re-running two of its seeds gives the same
    numbers. (reports/replay/replay.json, the old loop's, is history and is not re-run.)"""
    res = json.loads((REPO / "reports" / "replay" / "one-loop" / "replay.json").read_text())
    table = R.load_table(REPO / res["table"]["source"])
    assert len(table.df) == res["table"]["rows"] == 144 and table.total_cost == pytest.approx(res["table"]["total_cost_gpu_seconds"])
    problem = R.make_problem(table, [R.Budget.parse(b) for b in res["problem"]["budgets"]])
    assert list(problem.reference) == pytest.approx(
        [res["problem"]["reference_point"][k] for k in ("test_wer", "latency_ms")])
    _assert_two_seeds_reproduce(table, problem, res, ("edgetune", "nsga2"))


def _assert_two_seeds_reproduce(table, problem, res: dict, strategies: tuple[str, ...]) -> None:
    """Seeds 0 and 1 of ``strategies``, re-run with the committed settings, give the committed HV
    fractions at 15 % of the grid cost."""
    runs = R.run_all(table, problem, [0, 1], R.Settings(**res["settings"]), 0.25, strategies=list(strategies))
    at = np.array([0.15 * table.total_cost])
    for strategy in strategies:
        got = R.fractions(runs[strategy], problem, at)[:, 0]
        assert got == pytest.approx(res["checkpoints"]["0.15"][strategy]["values"][:2], abs=1e-9), strategy


@pytest.mark.parametrize("budget", ["tight", "loose"])
def test_committed_derived_table_results_reproduce(budget: str) -> None:
    """reports/replay/derived-5m/replay.json (the H200 table of candidates derived from the 5 M base):
    two of its seeds re-run through run_study give the committed HV fractions at 15 % of the grid cost."""
    res = json.loads((REPO / "reports" / "replay" / "derived-5m" / "replay.json").read_text())
    assert res["goal_met_under_every_budget"] is True
    b = res["budgets"][budget]
    table = R.load_table(REPO / res["table"]["source"])
    assert len(table.df) == res["table"]["rows"] == 160 and table.total_cost == pytest.approx(res["table"]["total_cost_gpu_seconds"])
    assert table.df["test_wer"].min() <= 0.06                     # the spread: a real front
    problem = R.make_problem(table, [R.Budget.parse(x) for x in b["problem"]["budgets"]])
    _assert_two_seeds_reproduce(table, problem, b, ("edgetune", "motpe"))


# ---- parity failures, baselines, ablations, budgets ------------------------------------------


def _parity_table(tmp_path: Path) -> tuple[object, tuple]:
    """The small table with ``parity_passed``: the lowest-latency row failed the export parity gate."""
    df = R.synthetic_table(seed=1, epochs=4, **SMALL_GRID)
    bad = int(df["latency_ms"].idxmin())
    df["parity_passed"] = 1
    df.loc[bad, "parity_passed"] = 0
    df["wer_base"], df["quant_cost"], df["export_error"] = 0.1, 0.01, np.nan  # recorded, not used
    table = R.load_table(_write(tmp_path, df))
    return table, tuple(df.loc[bad, list(R.KNOBS)].tolist())


def test_a_row_that_failed_parity_fails_its_trial_as_the_product_does(tmp_path: Path) -> None:
    """parity_passed = 0: the trial is trained (and charged), then ends FAIL with a ParityError,
    through run_study's own failure path, and never reaches a front."""
    from edgetune.search import load_study_dir

    table, bad = _parity_table(tmp_path)
    assert table.row(bad)["parity_passed"] is False and sum(not r.get("parity_passed", True) for r in table.rows.values()) == 1
    problem = R.make_problem(table, ())
    assert problem.n_parity_failed == 1 and problem.n_feasible == 15
    assert bad[:4] not in {tuple(f[k] for k in R.KNOBS) for f in problem.true_front}
    study = tmp_path / "study"
    run = R.simulate("random", table, problem, seed=0, settings=replace(SMALL_SETTINGS, n_trials_per_config=10),
                     horizon=30 * table.total_cost, study_dir=study)
    _, st = load_study_dir(study)
    failed = [t for t in st.get_trials(deepcopy=False) if t.state.name == "FAIL"]
    assert failed and run.failed == len(failed)
    for t in failed:  # what run_study records when run_candidate's parity gate raises
        assert tuple(t.user_attrs["knobs"][k] for k in R.KNOBS) == bad
        assert t.user_attrs["fail_type"] == "ParityError" and t.user_attrs["fail_reason"].startswith("ParityError: ")
        assert "parity_passed = 0" in t.user_attrs["fail_reason"] and "interrupted" not in t.user_attrs
    row = table.row(bad)  # each failed attempt paid its training and its export
    full = [t for t in run.trials if t["outcome"] == "full"]
    expect = len(failed) * (row["train_gpu_seconds"] + row["measure_seconds"]) + sum(
        table.row(t["key"])["train_gpu_seconds"] + table.row(t["key"])["measure_seconds"] for t in full)
    assert run.gpu_seconds == pytest.approx(expect)
    assert len(full) == 15 and run.hvs[-1] == pytest.approx(problem.true_hv, abs=1e-12)


def test_parity_passed_must_be_a_flag(tmp_path: Path) -> None:
    df = R.synthetic_table(seed=0, epochs=3, **SMALL_GRID).assign(parity_passed="1")
    df.loc[3, "parity_passed"] = "maybe"
    with pytest.raises(DataError, match=r"'parity_passed' must be 0 or 1.*row 5"):
        R.load_table(_write(tmp_path, df))
    with pytest.raises(DataError, match=r"unexpected \['parity'\].*optionally parity_passed"):
        R.load_table(_write(tmp_path, df.drop(columns=["parity_passed"]).assign(parity=1)))
    df.loc[3, "parity_passed"] = "false"
    assert R.load_table(_write(tmp_path, df)).df["parity_passed"].tolist().count(0) == 1


@pytest.mark.parametrize("strategy", ["gp", "motpe", "edgetune-no-precheck"])
def test_baselines_and_ablations_are_product_study_configs_run_by_run_study(small, strategy: str,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import edgetune.search._study as study_mod

    table, problem = small
    config = R.study_config(strategy, table, problem, 1, SMALL_SETTINGS)
    spec = R.STRATEGY_SPECS[strategy]
    assert config.precheck is spec.precheck and (config.scheduler.name == "moasha") is spec.asha
    assert config.sampler.name.value == {"gp": "gp", "motpe": "tpe", "edgetune-no-precheck": "nsga2"}[strategy]
    calls = []
    real = study_mod.run_study
    monkeypatch.setattr(study_mod, "run_study", lambda c, d, **kw: calls.append(c.study_name) or real(c, d, **kw))
    run = R.simulate(strategy, table, problem, seed=1, settings=SMALL_SETTINGS, horizon=0.4 * table.total_cost)
    assert calls == [f"replay-{strategy}-1"] and run.full > 0 and run.rejected == 0
    assert run.gpu_seconds <= 0.4 * table.total_cost + 1e-6


def test_syne_moasha_is_optional_and_says_which_extra(small, monkeypatch: pytest.MonkeyPatch, small_csv: Path) -> None:
    monkeypatch.setitem(R.OPTIONAL_STRATEGIES, "syne-moasha", (lambda: False, R.replay_syne.EXTRA_HINT))
    assert "syne-moasha" not in R.available_strategies()
    with pytest.raises(ConfigError, match=r"not installed. Fix: pip install -e '.\[replay\]'"):
        R.main(["--table", str(small_csv), "--strategies", "edgetune,syne-moasha", "--seeds", "0"])
    with pytest.raises(ConfigError, match="no study config"):
        R.study_config("syne-moasha", *small, 0, SMALL_SETTINGS)


@pytest.mark.skipif(not R.replay_syne.available(), reason="syne-tune not installed (the replay extra)")
def test_syne_moasha_is_deterministic_and_keeps_to_the_budget(small) -> None:
    table, problem = small
    s = replace(SMALL_SETTINGS, workers=2)
    before = np.random.get_state()[1].copy()
    a = R.simulate("syne-moasha", table, problem, seed=3, settings=s, horizon=0.5 * table.total_cost)
    assert np.array_equal(np.random.get_state()[1], before)  # Syne Tune samples from numpy's global RNG: restored
    b = R.simulate("syne-moasha", table, problem, seed=3, settings=s, horizon=0.5 * table.total_cost)
    c = R.simulate("syne-moasha", table, problem, seed=4, settings=s, horizon=0.5 * table.total_cost)
    assert a.trials == b.trials and a.hvs == b.hvs and a.trials != c.trials
    assert a.stop_reason == "budget" and a.interrupted >= 1
    assert a.gpu_seconds == pytest.approx(0.5 * table.total_cost)  # 2 workers busy until the budget's end


def test_latency_budgets_are_percentiles_or_milliseconds(small) -> None:
    table, _ = small
    lat = table.df["latency_ms"].to_numpy(float)
    got = R.parse_latency_budgets("tight=p25,loose=p50,fixed=400", table)
    assert list(got) == ["tight", "loose", "fixed"]
    assert got["tight"][0] == pytest.approx(np.percentile(lat, 25)) and got["loose"][0] == pytest.approx(np.median(lat))
    assert got["fixed"] == (400.0, "(given on the command line)")
    for bad in ("p25", "a=p101", "a=p5,a=p6", "a=fast", ""):
        with pytest.raises(ConfigError, match="--latency-budgets"):
            R.parse_latency_budgets(bad, table)
