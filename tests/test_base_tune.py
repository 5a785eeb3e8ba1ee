"""`edgetune base tune`: an Optuna study of the base recipe whose median pruner stops a bad lr, resume
after SIGKILL, the best configuration retrained over 3 seeds (mean ± std), and population-based
training whose exploit step copies a checkpoint.

The tiny corpus (48 train utterances) never gets a d_model-32 model below dev WER 1.0 in a few
epochs (measured: 1.0 at every epoch for lr 1e-6 ... 3e-2, up to 30 epochs), so these studies
minimise dev CTC loss (``metric: dev_loss``), which separates a good lr from a bad one after
one epoch; the WER path is the same code with another key of the same epoch record.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from _helpers import kill_mid_trial

from edgetune.base import BaseConfig
from edgetune.base._tune_config import TuneConfig, load_tune_config
from edgetune.errors import ConfigError

ROOT = Path(__file__).parents[1]
BASE = {"name": "tiny", "preset": None, "model_config": {"d_model": 32, "n_layers": 1, "n_heads": 2, "conv_kernel": 3},
        "dataset": "tiny", "chunks": [160, 320], "eval_chunks": [160], "export_chunk_ms": 160,
        "train": {"epochs": 1, "batch_size": 8, "lr": 3.0e-3, "device": "cpu", "num_threads": 1}}


def _config(tmp: Path, **over) -> Path:
    d = {"study_name": "t", "metric": "dev_loss", "n_trials": 4, "seed": 0, "base": BASE,
         "pruner": {"type": "median", "n_startup_trials": 2},
         "proxy": {"data_fraction": 0.5, "epochs": 3},
         "space": {"lr": {"low": 1.0e-6, "high": 1.0e-2, "log": True}, "dropout": {"low": 0.0, "high": 0.3}},
         # two good learning rates finish first (the median pruner's startup trials), then a hopeless one
         "enqueue": [{"lr": 3.0e-3}, {"lr": 1.0e-2}, {"lr": 1.0e-6}],
         "final": {"seeds": [0, 1, 2], "epochs": 1}, **over}
    path = tmp / "tune.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_tune_config_rejects_unknown_knobs_and_bad_ranges(tmp_path):
    with pytest.raises(ConfigError, match=r"knob 'momentum' is unknown; valid knobs are \[.*'lr'"):
        load_tune_config(_config(tmp_path, space={"momentum": {"low": 0.1, "high": 0.9}}))
    with pytest.raises(ConfigError, match=r"`low <= high` must hold, but got \(low=0.1, high=0.01\)"):
        load_tune_config(_config(tmp_path, space={"lr": {"low": 0.1, "high": 0.01}}))
    with pytest.raises(ConfigError, match="pruner.type must be one of"):
        load_tune_config(_config(tmp_path, pruner={"type": "asha"}))
    # recipe knobs at their defaults stay out of a base config's dict (old cards and checkpoints match)
    assert "weight_decay" not in BaseConfig().to_dict()["train"]
    tuned = load_tune_config(_config(tmp_path)).recipe({"lr": 1e-3, "dropout": 0.2}, epochs=2, seed=5)
    assert tuned.train.lr == 1e-3 and tuned.train.epochs == 2 and tuned.train.seed == 5
    assert tuned.resolved_model_config()["dropout"] == 0.2
    assert BaseConfig.from_dict(tuned.to_dict()) == tuned


def test_tune_prunes_a_bad_lr_and_retrains_the_best_over_three_seeds(tmp_path):
    from optuna.trial import TrialState

    from edgetune.base._tune import load_tune_study, run_tune

    summary = run_tune(_config(tmp_path), tmp_path / "study", log=lambda *_: None)
    study = load_tune_study(tmp_path / "study")
    trials = study.get_trials()
    assert len(trials) == 4
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, [(t.number, t.state, t.params) for t in trials]
    bad = trials[2]
    assert bad.params["lr"] == pytest.approx(1e-6) and bad.state == TrialState.PRUNED
    assert bad.user_attrs["epochs_run"] < 3                     # stopped by the pruner, not at the end
    assert summary["counts"]["pruned"] == len(pruned)
    best = min((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert summary["best"]["number"] == best.number
    final = summary["final"]
    assert [r["seed"] for r in final["runs"]] == [0, 1, 2]
    losses = [r["dev_loss"] for r in final["runs"]]
    assert final["dev_loss"]["mean"] == pytest.approx(statistics.fmean(losses))
    assert final["dev_loss"]["std"] == pytest.approx(statistics.stdev(losses))
    assert final["dev_loss"]["std"] > 0                        # three seeds, three different runs
    for r in final["runs"]:                                     # each a complete base directory (train_base)
        card = json.loads((Path(r["dir"]) / "card.json").read_text())
        assert card["training"]["seed"] == r["seed"] and card["training"]["lr"] == best.params["lr"]
        assert card["model_config"]["dropout"] == pytest.approx(best.params["dropout"])
    report = tmp_path / "study" / "report"
    rows = (report / "trials.csv").read_text().strip().splitlines()
    assert len(rows) == 5 and "pruned" in (report / "trials.csv").read_text()
    assert "Parallel coordinates" in (report / "tune.html").read_text()
    assert "± " in (report / "tune.md").read_text()
    assert set(summary["importance"]) <= {"lr", "dropout"}


@pytest.mark.slow
def test_tune_resumes_after_sigkill_keeping_finished_trials(tmp_path):
    from optuna.trial import TrialState

    from edgetune.base._tune import load_tune_study

    config = _config(tmp_path, n_trials=5, proxy={"data_fraction": 1.0, "epochs": 8}, enqueue=[])
    study_dir = tmp_path / "study"
    cmd = [sys.executable, "-m", "edgetune", "base", "tune", "--config", str(config), "--study-dir", str(study_dir),
           "--no-final"]
    proc = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240

    def running() -> list:  # mid-training: every knob drawn and one epoch reported (not mid-suggest)
        return [t for t in load_tune_study(study_dir).get_trials()
                if t.state == TrialState.RUNNING and t.intermediate_values]

    killed = None
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        if (study_dir / "journal.log").exists():
            trials = load_tune_study(study_dir).get_trials()
            if sum(t.state.is_finished() for t in trials) >= 2 and any(t.state == TrialState.RUNNING
                                                                       and t.intermediate_values for t in trials):
                killed = kill_mid_trial(proc.pid, running)  # frozen, read again, then SIGKILL
    assert killed is not None, "the study ended before it could be killed"
    proc.wait(timeout=30)
    before = {t.number: (t.state, t.value, t.params) for t in load_tune_study(study_dir).get_trials()
              if t.state.is_finished()}
    out = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "were interrupted" in out.stdout
    trials = load_tune_study(study_dir).get_trials()
    for number, kept in before.items():                        # finished trials are kept as they were
        assert (trials[number].state, trials[number].value, trials[number].params) == kept
    interrupted = [t for t in trials if t.user_attrs.get("interrupted")]
    assert len(interrupted) == 1 and interrupted[0].state == TrialState.FAIL
    retry = [t for t in trials if t.user_attrs.get("retry_of") == interrupted[0].number]
    assert len(retry) == 1 and retry[0].params == interrupted[0].params
    assert sum(1 for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)) == 5


def test_pbt_exploit_copies_the_best_members_checkpoint_and_perturbs_its_lr(tmp_path):
    from safetensors.torch import load_file

    from edgetune.base._pbt import run_pbt

    config = load_tune_config(_config(
        tmp_path, proxy={"data_fraction": 0.5, "epochs": 2}, space={"lr": {"low": 1.0e-6, "high": 1.0e-2, "log": True}},
        enqueue=[{"lr": 5.0e-3}, {"lr": 1.0e-6}],
        pbt={"population": 2, "interval": 1, "quantile": 0.5, "perturb": [1.5], "resample_probability": 0.0}))
    summary = run_pbt(config, tmp_path / "study", workers=1, log=lambda *_: None)
    events = summary["events"]
    assert len(events) == 1
    e = events[0]
    assert (e["epoch"], e["member"], e["copied_from"]) == (1, 1, 0)     # lr 1e-6 loses to lr 5e-3 after epoch 1
    assert e["value_before"] > e["winner_value"]
    assert e["new_params"]["lr"] == pytest.approx(7.5e-3)               # explore: 5e-3 x 1.5, within range
    folder = tmp_path / "study" / "pbt"
    m0 = json.loads((folder / "member-0" / "checkpoints" / "epoch-0002" / "state.json").read_text())
    m1 = json.loads((folder / "member-1" / "checkpoints" / "epoch-0002" / "state.json").read_text())
    assert m1["history"][0] == m0["history"][0]                          # member 1 resumed from member 0's epoch 1
    assert m1["history"][1] != m0["history"][1]                          # ... then trained on with its new lr
    assert m1["param_groups"][0]["lr"] != m0["param_groups"][0]["lr"]
    w0 = load_file(str(folder / "member-0" / "checkpoints" / "epoch-0002" / "model.safetensors"))
    w1 = load_file(str(folder / "member-1" / "checkpoints" / "epoch-0002" / "model.safetensors"))
    assert any(not (w0[k] == w1[k]).all() for k in w0 if w0[k].is_floating_point())
    assert summary["best"]["value"] == min(m["value"] for m in summary["members"])
    assert (folder / "pbt.md").read_text().count("| 1 | 1 | 0 |") == 1


def test_mlflow_tracking_logs_trials_to_a_local_store(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from edgetune.base._tune import run_tune

    run_tune(_config(tmp_path, n_trials=3, tracking="mlflow", final={"seeds": [0], "epochs": 1}), tmp_path / "study",
             log=lambda *_: None)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'study' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("t")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert {"trial-0", "trial-1", "trial-2"} <= set(runs)
    assert float(runs["trial-0"].data.params["lr"]) == pytest.approx(3e-3)
    history = client.get_metric_history(runs["trial-0"].info.run_id, "dev_loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert runs["trial-2"].info.status == "KILLED"                       # the pruned trial


def test_time_budget_starts_no_trial_or_round_after_it_and_a_rerun_continues(tmp_path):
    from edgetune.base._pbt import run_pbt
    from edgetune.base._tune import counted, optimize

    config = load_tune_config(_config(tmp_path, proxy={"data_fraction": 0.5, "epochs": 2},
                                      pbt={"population": 2, "interval": 1, "quantile": 0.5}))
    root = tmp_path / "study"
    assert counted(optimize(config, root, time_budget=0, log=lambda *_: None)) == 1      # one trial always runs
    assert counted(optimize(config, root, time_budget=0, log=lambda *_: None)) == 2      # a rerun adds one
    assert counted(optimize(config, root, n_trials=3, log=lambda *_: None)) == 3
    summary = run_pbt(config, tmp_path / "pbt", time_budget=0, log=lambda *_: None)
    assert (summary["epochs_reached"], summary["epochs"]) == (1, 2)       # one round of 1 epoch, then stopped
    assert run_pbt(config, tmp_path / "pbt", log=lambda *_: None)["epochs_reached"] == 2


@pytest.mark.slow
def test_tuner_comparison_retrains_each_best_recipe_and_the_default(tmp_path):
    """benchmarks/base_tune_compare.py end to end on the tiny corpus (CPU): three tuners, then the finals."""
    config = _config(tmp_path, proxy={"data_fraction": 0.5, "epochs": 2}, enqueue=[{"lr": 3.0e-3, "dropout": 0.1}],
                     pbt={"population": 2, "interval": 1, "quantile": 0.5})
    out = tmp_path / "compare"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "base_tune_compare.py"), "--config", str(config),
           "--out", str(out), "--budget", "3", "--workers", "1", "--final-epochs", "1", "--seeds", "0", "1"]
    subprocess.run(cmd, check=True, env=_env(), cwd=ROOT, capture_output=True, timeout=600)
    summary = json.loads((out / "compare.json").read_text())
    assert set(summary["final"]) == {"default", "random", "hyperband", "pbt"}
    for name, final in summary["final"].items():
        assert [r["seed"] for r in final["runs"]] == [0, 1]
        for r in final["runs"]:
            card = json.loads((out / "final" / f"{name}-seed{r['seed']}" / "card.json").read_text())
            assert card["training"]["seed"] == r["seed"] and card["training"]["epochs"] == 1
            assert card["wer"]["160"]["test"] == r["test_wer"]
            if name != "default":
                assert card["training"]["lr"] == pytest.approx(summary["tuners"][name]["best_params"]["lr"])
    tuners = summary["tuners"]
    assert tuners["random"]["counts"]["pruned"] == 0                      # random runs without a pruner
    assert tuners["pbt"]["population"] == 2
    study = yaml.safe_load((out / "hyperband" / "tune.yaml").read_text())
    assert study["pruner"]["type"] == "hyperband" and study["sampler"] == "tpe"
    md = (out / "compare.md").read_text()
    assert all(f"| {name} |" in md for name in summary["final"])
    before = (out / "compare.json").stat().st_mtime_ns                    # a rerun trains nothing again
    cards = sorted(p.stat().st_mtime_ns for p in (out / "final").glob("*/card.json"))
    subprocess.run(cmd, check=True, env=_env(), cwd=ROOT, capture_output=True, timeout=600)
    assert sorted(p.stat().st_mtime_ns for p in (out / "final").glob("*/card.json")) == cards
    assert (out / "compare.json").stat().st_mtime_ns >= before


def test_a_proxy_whose_values_all_tie_is_named_in_the_summary_and_report(tmp_path):
    from edgetune.base._tune import finish, optimize
    from edgetune.base._tune_config import saturated_proxy

    # the tiny corpus leaves every short run at dev WER 1.0 (see the module docstring)
    config = load_tune_config(_config(tmp_path, metric="wer", n_trials=3, pruner={"type": "none"},
                                      proxy={"data_fraction": 0.5, "epochs": 1}))
    study = optimize(config, tmp_path / "study", log=lambda *_: None)
    summary = finish(config, tmp_path / "study", study, final=False, log=lambda *_: None)
    assert "3 of 3 complete trials have the same dev wer 1.0000" in summary["warning"]
    assert "metric: dev_loss" in summary["warning"]
    assert "**warning**" in (tmp_path / "study" / "report" / "tune.md").read_text()
    assert saturated_proxy([1.0, 0.9, 0.8], config) is None and saturated_proxy([1.0, 1.0], config) is None


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_of_another_host_with_a_stale_heartbeat_is_retried_and_not_counted(tmp_path, monkeypatch):
    """A shared RDB storage: another host's trial stops beating. The worker whose FAIL won queues its
    parameters again, and the stale trial no longer uses up ``n_trials``."""
    import optuna

    import edgetune._storage as storage
    from edgetune.base._tune import counted, recover_interrupted

    monkeypatch.setattr(storage, "HEARTBEAT_INTERVAL_S", 1)
    monkeypatch.setattr(storage, "HEARTBEAT_GRACE_S", 1)
    study = optuna.create_study(storage=storage.rdb_storage(f"sqlite:///{tmp_path / 'db.sqlite'}"),
                                study_name="tune", direction="minimize")
    trial = study.ask()
    trial.suggest_float("lr", 1e-4, 1e-2, log=True)
    trial.set_user_attr("host", "another-machine")
    study._storage.record_heartbeat(trial._trial_id)
    assert counted(study) == 1
    time.sleep(2.5)
    logs: list[str] = []
    assert recover_interrupted(study, logs.append) == [trial.number]
    dead, retry = study.get_trials()
    assert dead.state.name == "FAIL" and retry.state.name == "WAITING"
    assert retry.user_attrs["retry_of"] == dead.number and logs
    assert counted(study) == 0  # the retry counts once it runs, the stale trial never
    assert recover_interrupted(study, logs.append) == []
