"""The study loop, end to end with the simulated runner: recording, failures, budgets, resume
(including a search process killed with SIGKILL mid-trial), duplicates and samplers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _helpers import WIDE_SPACE, kill_mid_trial, study_config

from edgetune._io import sha256_file
from edgetune.errors import ParityError, StudyError, TrainingError
from edgetune.search import (
    SimulatedRunner,
    StudyPaths,
    config_to_yaml,
    is_finished,
    is_interrupted,
    open_study,
    run_study,
)
from edgetune.search._storage import repair_journal

REPO = Path(__file__).resolve().parents[1]

#: this file's study (what differs from _helpers.STUDY): every knob searched, NSGA-II, a latency budget
BASE = {"seed": 1, "space": WIDE_SPACE, "budgets": ["latency_ms <= 500"], "train": {"epochs": 2},
        "sampler": {"name": "nsga2", "population_size": 4}}


def cfg(n: int = 10, **overrides):
    return study_config("t", n, **{**BASE, **overrides})


def parity_on_4bit_sparse(k):
    return ParityError("max |logit diff| 9.1 > tolerance 1.0") if k.bits == 4 and k.sparsity >= 0.5 else None


def load(config, study_dir: Path):
    return open_study(config, StudyPaths(study_dir), create=False)


def test_study_records_results_failures_and_budgets(tmp_path: Path) -> None:
    config = cfg(14)
    runner = SimulatedRunner(fail_when=parity_on_4bit_sparse)
    summary = run_study(config, tmp_path, runner=runner, progress=False)
    study = load(config, tmp_path)
    trials = study.get_trials()
    assert summary.finished == 14 == sum(is_finished(t) for t in trials)
    # the baseline goes first: the least compressed point of the space
    t0 = trials[0]
    assert t0.params == {"bits": 32, "sparsity": 0.0, "depth_multiplier": 1.0, "chunk_ms": 320}
    assert t0.user_attrs["baseline"] is True
    assert (tmp_path / "study.yaml").read_text() == config_to_yaml(config)
    n_complete = n_fail = 0
    for t in trials:
        knobs = t.user_attrs["knobs"]
        if t.state.name == "FAIL":
            n_fail += 1
            assert knobs["bits"] == 4 and knobs["sparsity"] >= 0.5
            assert t.user_attrs["fail_reason"].startswith("ParityError: max |logit diff|")
            assert not is_interrupted(t)
            continue
        assert t.state.name == "COMPLETE"
        n_complete += 1
        if "duplicate_of" in t.user_attrs:
            continue
        ua = t.user_attrs
        for key in ("wer", "worst_group_wer", "wer_per_group", "latency_ms", "rtf", "algorithmic_latency_ms",
                    "size_bytes", "gzip_bytes", "peak_rss_bytes", "parity", "host", "train_seconds", "sha256"):
            assert key in ua, key
        art = tmp_path / ua["artifact"]
        assert ua["artifact"] == f"trials/{t.number}/model.onnx"
        assert sha256_file(art) == ua["sha256"]
        assert art.stat().st_size == ua["size_bytes"]
        assert json.loads((art.parent / "result.json").read_text())["wer"] == ua["wer"]
        latency = ua["latency_ms"]["p90"] + ua["algorithmic_latency_ms"]
        assert t.values == pytest.approx([ua["wer"], latency, ua["size_bytes"]])
        assert (t.constraints["latency_ms_max"] <= 0) == (latency <= 500)
        assert t.constraints["latency_ms_max"] == pytest.approx(latency / 500 - 1)
    assert n_complete + n_fail == 14
    assert set(summary.front) <= {t.number for t in trials if t.state.name == "COMPLETE"}


def test_resume_adds_trials_without_redoing_any(tmp_path: Path) -> None:
    config = cfg(9)
    first = SimulatedRunner()
    run_study(config, tmp_path, runner=first, progress=False, max_new_trials=4)
    before = {t.number: (t.params, t.values) for t in load(config, tmp_path).get_trials()}
    assert len(before) == 4
    second = SimulatedRunner()
    summary = run_study(config, tmp_path, runner=second, progress=False)
    trials = load(config, tmp_path).get_trials()
    assert summary.finished == 9 and len(trials) == 9  # no loss, no extra
    for t in trials[:4]:
        assert (t.params, t.values) == before[t.number]
    new_runs = [t for t in trials[4:] if "duplicate_of" not in t.user_attrs]
    assert len(second.calls) == len(new_runs)  # finished trials were not run again
    # a third run with the same config does nothing
    third = SimulatedRunner()
    assert run_study(config, tmp_path, runner=third, progress=False).new_trials == []
    assert third.calls == []


def test_raising_n_trials_extends_and_incompatible_config_is_refused(tmp_path: Path) -> None:
    run_study(cfg(3), tmp_path, runner=SimulatedRunner(), progress=False)
    summary = run_study(cfg(5), tmp_path, runner=SimulatedRunner(), progress=False)
    assert summary.finished == 5
    changed = cfg(5, space={**WIDE_SPACE, "sparsity": {"low": 0.0, "high": 0.9, "step": 0.1}})
    with pytest.raises(StudyError) as e:
        run_study(changed, tmp_path, runner=SimulatedRunner(), progress=False)
    assert "space.sparsity.high: 0.8 -> 0.9" in str(e.value)
    with pytest.raises(StudyError, match="budgets"):
        run_study(cfg(5).replace(budgets=()), tmp_path, runner=SimulatedRunner(), progress=False)
    assert len(load(cfg(5), tmp_path).get_trials()) == 5  # refused runs touched nothing


def test_ctrl_c_trial_is_retried_once(tmp_path: Path) -> None:
    config = cfg(6)

    class Interrupting(SimulatedRunner):
        def __call__(self, knobs, out_dir, **kw):
            if len(self.calls) == 2:
                self.calls.append(knobs)
                raise KeyboardInterrupt
            return super().__call__(knobs, out_dir, **kw)

    with pytest.raises(KeyboardInterrupt):
        run_study(config, tmp_path, runner=Interrupting(), progress=False)
    stopped = load(config, tmp_path).get_trials()[-1]
    assert stopped.state.name == "FAIL" and is_interrupted(stopped)
    summary = run_study(config, tmp_path, runner=SimulatedRunner(), progress=False)
    trials = load(config, tmp_path).get_trials()
    retries = [t for t in trials if t.user_attrs.get("retry_of") == stopped.number]
    assert len(retries) == 1 and retries[0].params == stopped.params and retries[0].state.name == "COMPLETE"
    assert summary.finished == 6 and summary.interrupted == 1
    run_study(config, tmp_path, runner=SimulatedRunner(), progress=False)  # not retried again
    assert len(load(config, tmp_path).get_trials()) == len(trials)


def test_oom_and_training_errors_fail_the_trial_only(tmp_path: Path) -> None:
    config = cfg(6)
    errors = iter([MemoryError("CUDA out of memory"), TrainingError("loss is NaN at epoch 2")])

    def fail_twice(knobs):
        return next(errors, None)

    summary = run_study(config, tmp_path, runner=SimulatedRunner(fail_when=fail_twice), progress=False)
    reasons = [t.user_attrs.get("fail_reason") for t in load(config, tmp_path).get_trials()]
    assert reasons[0].startswith("MemoryError: CUDA out of memory")
    assert reasons[1].startswith("TrainingError: loss is NaN")
    assert summary.finished == 6 and summary.failed == 2


def test_a_bug_fails_its_trial_and_stops_the_study_only_when_it_repeats(tmp_path: Path) -> None:
    from edgetune.search._study import MAX_BUGS_IN_A_ROW

    config = cfg(8)
    corner = run_study(config, tmp_path / "corner", progress=False,
                       runner=SimulatedRunner(fail_when=lambda k: ZeroDivisionError("bug") if k.bits == 4 else None))
    trials = load(config, tmp_path / "corner").get_trials()
    bugs = [t for t in trials if t.user_attrs.get("fail_type") == "ZeroDivisionError"]
    assert corner.finished == 8 and bugs and len(bugs) < 8   # the rest of the space still ran
    assert all("Traceback" in t.user_attrs["fail_traceback"] for t in bugs)

    with pytest.raises(ZeroDivisionError):
        run_study(config, tmp_path / "everywhere", progress=False,
                  runner=SimulatedRunner(fail_when=lambda k: ZeroDivisionError("bug")))
    trials = load(config, tmp_path / "everywhere").get_trials()
    assert len(trials) == MAX_BUGS_IN_A_ROW
    assert all(t.state.name == "FAIL" and t.user_attrs["fail_reason"] == "ZeroDivisionError: bug" for t in trials)


def test_same_knobs_are_never_trained_twice(tmp_path: Path) -> None:
    config = study_config("d", 6, seed=None, space={"bits": [8, 32]}, objectives=["wer", "latency_ms"])
    runner = SimulatedRunner()
    run_study(config, tmp_path, runner=runner, progress=False)
    trials = load(config, tmp_path).get_trials()
    assert len(runner.calls) == len({c.bits for c in runner.calls}) <= 2
    dups = [t for t in trials if "duplicate_of" in t.user_attrs]
    assert len(dups) == 6 - len(runner.calls)
    for t in dups:
        orig = trials[t.user_attrs["duplicate_of"]]
        assert t.values == orig.values and t.params == orig.params
        assert t.user_attrs["artifact"] == orig.user_attrs["artifact"]


@pytest.mark.parametrize("name", ["nsga2", "nsga3", "tpe", "random", "grid", pytest.param("gp", marks=pytest.mark.slow)])
def test_every_sampler_runs(tmp_path: Path, name: str) -> None:
    config = cfg(5, space={**WIDE_SPACE, "depth_multiplier": {"low": 0.25, "high": 1.0, "step": 0.25}},
                 sampler={"name": name, "population_size": 2, "n_startup_trials": 2})
    summary = run_study(config, tmp_path, runner=SimulatedRunner(), progress=False)
    assert summary.finished == 5 and summary.complete == 5


def test_stale_running_trial_of_dead_process_is_failed_and_requeued(tmp_path: Path) -> None:
    config = cfg(3)
    run_study(config, tmp_path, runner=SimulatedRunner(), progress=False, max_new_trials=1)
    study = load(config, tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    trial = study.ask()
    params = {"bits": trial.suggest_categorical("bits", [4, 8, 32])}
    trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": dead.pid, "started": 0.0})
    summary = run_study(config, tmp_path, runner=SimulatedRunner(), progress=False)
    trials = load(config, tmp_path).get_trials()
    assert trials[trial.number].state.name == "FAIL" and is_interrupted(trials[trial.number])
    retry = [t for t in trials if t.user_attrs.get("retry_of") == trial.number]
    assert len(retry) == 1 and retry[0].params["bits"] == params["bits"]
    assert summary.finished == 3


def test_a_queued_retry_runs_even_when_the_study_already_has_n_trials(tmp_path: Path) -> None:
    """A dead worker's retry queued after the others had finished n trials (CI saw this with the
    heartbeat path) still runs: the worker that finds it does not stop at n with it waiting."""
    config = cfg(3)
    run_study(config, tmp_path, runner=SimulatedRunner(), progress=False)
    study = load(config, tmp_path)
    first = study.get_trials()[0]
    study.enqueue_trial(dict(first.params), user_attrs={"retry_of": first.number})
    summary = run_study(config, tmp_path, runner=SimulatedRunner(), progress=False)
    retry = load(config, tmp_path).get_trials()[-1]
    assert retry.user_attrs.get("retry_of") == first.number
    assert retry.state.name in ("COMPLETE", "PRUNED") and retry.params == first.params
    assert summary.new_trials == [retry.number]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_failed_for_a_stale_heartbeat_is_queued_again_by_its_claimer_at_once(tmp_path: Path,
                                                                                     monkeypatch) -> None:
    """Another host's trial whose heartbeat went stale: the live worker whose FAIL won queues its
    retry in the same pass, not only after the retry grace or when a new worker starts."""
    import optuna

    import edgetune._storage as storage
    from edgetune.search import recover_interrupted

    monkeypatch.setattr(storage, "HEARTBEAT_INTERVAL_S", 1)
    monkeypatch.setattr(storage, "HEARTBEAT_GRACE_S", 1)
    study = optuna.create_study(storage=storage.rdb_storage(f"sqlite:///{tmp_path / 'db.sqlite'}"),
                                study_name="stale", directions=["minimize"])
    trial = study.ask()
    trial.suggest_int("x", 0, 9)
    trial.set_user_attr("worker", {"host": "another-machine", "pid": 1, "started": 0.0})
    study._storage.record_heartbeat(trial._trial_id)
    time.sleep(2.5)
    log: list[str] = []
    assert recover_interrupted(study, log.append, startup=False) == [trial.number]
    dead, retry = study.get_trials()
    assert dead.state.name == "FAIL" and is_interrupted(dead)
    assert retry.state.name == "WAITING" and retry.user_attrs["retry_of"] == dead.number
    assert any("heartbeat" in m for m in log)
    assert recover_interrupted(study, startup=False) == []  # queued once


def test_half_written_journal_line_is_repaired(tmp_path: Path) -> None:
    config = cfg(3)
    run_study(config, tmp_path, runner=SimulatedRunner(), progress=False, max_new_trials=2)
    journal = tmp_path / "journal.log"
    good = journal.read_bytes()
    journal.write_bytes(good + b'{"op_code": 5, "worker_id": "x", "trial_id": 1, "par')
    assert repair_journal(journal) > 0
    assert journal.read_bytes() == good
    assert run_study(config, tmp_path, runner=SimulatedRunner(), progress=False).finished == 3


KILL_SCRIPT = """
import sys
from edgetune.search import SimulatedRunner, load_config, run_study
run_study(load_config(sys.argv[1]), sys.argv[2], runner=SimulatedRunner(epoch_delay_s=0.15), progress=False)
"""


def running(trials: list) -> list:
    return [t for t in trials if t.state.name == "RUNNING" and "knobs" in t.user_attrs]


def test_search_killed_with_sigkill_resumes_without_duplicates_or_losses(tmp_path: Path) -> None:
    config = cfg(10)
    cfg_file = tmp_path / "study.in.yaml"
    cfg_file.write_text(config_to_yaml(config))
    study_dir = tmp_path / "study"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(cfg_file), str(study_dir)], env=env)
    deadline = time.monotonic() + 120
    killed_number = None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if not (study_dir / "study.yaml").exists():
                continue
            trials = load(config, study_dir).get_trials()
            if sum(is_finished(t) for t in trials) < 3 or not running(trials):
                continue
            trial = kill_mid_trial(proc.pid, lambda: running(load(config, study_dir).get_trials()))
            if trial is not None:
                killed_number = trial.number
                break
    finally:
        if proc.poll() is None and killed_number is None:
            proc.kill()
        proc.wait()
    assert killed_number is not None, "the search finished or stalled before it could be killed"
    assert proc.returncode == -signal.SIGKILL
    before = {t.number: t for t in load(config, study_dir).get_trials() if is_finished(t)}
    assert load(config, study_dir).get_trials()[killed_number].state.name == "RUNNING"

    summary = run_study(config, study_dir, runner=SimulatedRunner(), progress=False)
    trials = load(config, study_dir).get_trials()
    # nothing lost: every trial finished before the kill is unchanged
    for n, t in before.items():
        assert trials[n].state == t.state and trials[n].values == t.values and trials[n].params == t.params
        assert trials[n].datetime_complete == t.datetime_complete
    # the killed trial is marked interrupted and its configuration ran again exactly once
    killed = trials[killed_number]
    assert killed.state.name == "FAIL" and is_interrupted(killed)
    retries = [t for t in trials if t.user_attrs.get("retry_of") == killed_number]
    assert len(retries) == 1 and retries[0].params == killed.params and retries[0].state.name == "COMPLETE"
    # no duplicates: exactly n_trials finished, numbers unique, nothing left running
    assert summary.finished == 10 == sum(is_finished(t) for t in trials)
    assert len({t.number for t in trials}) == len(trials)
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    for t in trials:
        if t.state.name == "COMPLETE":
            assert sha256_file(study_dir / t.user_attrs["artifact"]) == t.user_attrs["sha256"]


@pytest.mark.postgres
def test_two_workers_share_one_postgres_study(tmp_path: Path) -> None:
    url = os.environ.get("EDGETUNE_TEST_POSTGRES")
    if not url:
        if os.environ.get("EDGETUNE_REQUIRE_SERVICES"):
            pytest.fail("EDGETUNE_TEST_POSTGRES is not set but services are required")
        pytest.skip("set EDGETUNE_TEST_POSTGRES=postgresql://... to run")
    name = f"t{os.getpid()}_{int(time.time())}"
    config = cfg(8).replace(storage=url, study_name=name)
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(config_to_yaml(config))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(cfg_file), str(tmp_path / f"w{i}")], env=env)
        for i in range(2)
    ]
    for w in workers:
        assert w.wait(timeout=300) == 0
    study = load(config, tmp_path / "w0")
    trials = study.get_trials()
    finished = sum(is_finished(t) for t in trials)
    assert 8 <= finished <= 9  # each worker stops once finished + running reaches n_trials
    hosts = {t.user_attrs["worker"]["pid"] for t in trials}
    assert len(hosts) == 2  # both workers contributed


def test_grid_study_covers_the_grid_once_and_stops(tmp_path: Path) -> None:
    config = study_config("g", 10, seed=None, space={"bits": [8, 32], "chunk_ms": [160, 320], "sparsity": 0.0},
                          objectives=["wer", "latency_ms"], sampler={"name": "grid"})
    runner = SimulatedRunner()
    summary = run_study(config, tmp_path, runner=runner, progress=False)
    trials = load(config, tmp_path).get_trials()
    assert sorted((t.params["bits"], t.params["chunk_ms"]) for t in trials) == [(8, 160), (8, 320), (32, 160), (32, 320)]
    assert len(runner.calls) == 4 and summary.finished == 4


def test_cli_search_simulated_resume_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture, study_file) -> None:
    from edgetune.cli import main

    cfg_file = study_file("t", 4, file="s.yaml", **BASE)
    d = tmp_path / "study"
    args = ["search", "--config", str(cfg_file), "--study-dir", str(d), "--simulate", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4/4 trials finished" in out and (d / "report" / "index.html").exists()
    assert main(args + ["--n-trials", "6"]) == 0  # extend
    assert "6/6 trials finished" in capsys.readouterr().out
    study_file("t", 6, file="s.yaml", **{**BASE, "space": {**WIDE_SPACE, "chunk_ms": [160, 320]}})
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "space.chunk_ms" in err and "different config" in err
    study_file("t", 6, file="s.yaml", **BASE)
    assert main(args[:-2] + ["--quiet"]) == 2  # real pipeline into a simulated study: refused
    assert "simulated results" in capsys.readouterr().err
    study_file("t", 6, file="s.yaml", **BASE, bogus=1)
    assert main(args) == 2
    assert "bogus" in capsys.readouterr().err


def test_a_new_study_directory_has_its_study_yaml_before_its_journal(tmp_path: Path, monkeypatch) -> None:
    """Workers start one study at once: none may find a journal without study.yaml (the directory
    would look foreign to it, and `edgetune report` would refuse it)."""
    import edgetune.search._storage as storage

    config, paths = cfg(), StudyPaths(tmp_path / "study")
    real, seen = storage.open_storage, []

    def checked(config, paths):
        seen.append(paths.config.exists())
        return real(config, paths)

    monkeypatch.setattr(storage, "open_storage", checked)
    open_study(config, paths)
    assert seen == [True] and paths.journal.exists()
    open_study(config, paths)                                   # a second worker, same config: accepted
    assert seen == [True, True]
