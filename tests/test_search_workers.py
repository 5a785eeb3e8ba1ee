"""``edgetune search --workers K``: placement of the workers, and K real processes on one study."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from _helpers import kill_mid_trial, study_yaml

from edgetune.errors import ConfigError
from edgetune.search._workers import parse_gpus, plan, worker_command

REPO = Path(__file__).resolve().parents[1]
TWO_CORES = pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                               reason="needs 2 CPU cores")


def search_command(config: Path, study_dir: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """``edgetune search`` in a subprocess (command, environment) that imports this checkout."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "edgetune", "search", "--config", str(config), "--study-dir", str(study_dir),
           "--quiet", *args]
    return cmd, env


def _sigint(action):
    """A ``preexec_fn`` that sets SIGINT's disposition in the child. pytest itself may run with SIGINT
    ignored (a CI script's background job), and a child inherits that."""
    import signal

    return lambda: signal.signal(signal.SIGINT, action)


def one_point_config(tmp_path: Path, *, n_trials: int, epochs: int) -> Path:
    """A one-point space: every trial draws the same knobs."""
    cfg = tmp_path / "one-point.yaml"
    cfg.write_text(study_yaml("one-point", n_trials, seed=0, train={"epochs": epochs}, objectives=["wer", "latency_ms"],
                              space={"bits": [8], "sparsity": [0.5], "depth_multiplier": [0.5], "chunk_ms": [160]},
                              sampler={"name": "random", "enqueue_baseline": False}))
    return cfg


def test_plan_gives_each_worker_its_own_cores_and_round_robin_gpus() -> None:
    placements = plan(4, ["0", "1"], cores=list(range(10)))
    cores = [c for p in placements for c in p.cores]
    assert len(cores) == len(set(cores)) == 8  # disjoint; 10 // 4 = 2 each
    assert [p.gpu for p in placements] == ["0", "1", "0", "1"]
    env = placements[3].env({}, 4)
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["OMP_NUM_THREADS"] == "2" and env["EDGETUNE_WORKER"] == "3/4"
    assert all(p.gpu is None for p in plan(2, [], cores=[0, 1]))


def test_more_workers_than_cores_and_bad_gpu_lists_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"--workers 3.*2 CPU core.*--workers 2 or fewer"):
        plan(3, [], cores=[0, 1])
    with pytest.raises(ConfigError, match="--workers must be >= 1"):
        plan(0, [], cores=[0])
    for bad in ("0,0", "a,1", "0;1"):
        with pytest.raises(ConfigError, match="--gpus"):
            parse_gpus(bad)
    assert parse_gpus("1,0") == ["1", "0"] and parse_gpus(None) == []


def test_worker_command_keeps_the_study_and_overrides(tmp_path: Path) -> None:
    cmd = worker_command(Path("c.yaml"), tmp_path / "s", storage="postgresql://u@h/db", n_trials=7, simulate=0.5)
    assert cmd[1:4] == ["-m", "edgetune", "search"]
    assert cmd[cmd.index("--study-dir") + 1] == str((tmp_path / "s").resolve())
    assert cmd[cmd.index("--storage") + 1] == "postgresql://u@h/db"
    assert cmd[cmd.index("--n-trials") + 1] == "7" and cmd[cmd.index("--simulate") + 1] == "0.5"
    assert "--quiet" in cmd and "--no-report" in cmd and "--workers" not in cmd


@TWO_CORES
def test_two_worker_processes_share_one_study_without_losing_or_redoing_trials(tmp_path: Path) -> None:
    from edgetune.search import load_study_dir
    from edgetune.search._trials import is_finished

    study_dir = tmp_path / "study"
    cmd, env = search_command(REPO / "configs" / "smoke.yaml", study_dir,
                              "--simulate", "0.4", "--workers", "2", "--n-trials", "12")
    # 1.6 s a trial: long enough that, on a loaded 2-core machine, the launcher cannot run all 12 trials
    # alone while the helper is still importing torch (0.2 s a trial once did exactly that)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    _, study = load_study_dir(study_dir)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if is_finished(t)]
    assert len(finished) >= 12  # a worker may finish the trial it held when the count was reached
    assert len({t.number for t in trials}) == len(trials)
    assert all(t.state.name != "RUNNING" for t in trials)
    pids = Counter(t.user_attrs["worker"]["pid"] for t in finished)
    assert len(pids) == 2, f"both workers should have run trials, got {dict(pids)}"
    assert sum(t.user_attrs.get("baseline", False) for t in trials) == 1  # queued once, not per worker
    assert (study_dir / "workers" / "worker-1.log").is_file()
    assert (study_dir / "report" / "trials.csv").is_file()


@TWO_CORES
def test_a_candidate_another_worker_is_training_is_waited_for_not_trained_twice(tmp_path: Path) -> None:
    """Every trial draws the same knobs. Two workers start together; only one may train them, the
    other waits for its result and reuses it."""
    from edgetune.search import load_study_dir

    cfg = one_point_config(tmp_path, n_trials=4, epochs=10)
    study_dir = tmp_path / "study"
    cmd, env = search_command(cfg, study_dir, "--simulate", "1.0", "--workers", "2")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    _, study = load_study_dir(study_dir)
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    trained = [t for t in trials if "duplicate_of" not in t.user_attrs]
    assert len(trials) >= 4 and len(trained) == 1, [(t.number, t.user_attrs.get("duplicate_of")) for t in trials]
    pids = {t.user_attrs["worker"]["pid"] for t in study.get_trials(deepcopy=False)}
    assert len(pids) == 2  # both workers drew trials; the second one's were reused, not retrained


@TWO_CORES
def test_ctrl_c_while_waiting_for_a_twin_leaves_no_trial_running(tmp_path: Path) -> None:
    import signal
    import time

    from edgetune.search import load_study_dir

    cfg = one_point_config(tmp_path, n_trials=3, epochs=30)
    study_dir = tmp_path / "study"
    cmd, env = search_command(cfg, study_dir, "--simulate", "1.0", "--workers", "2")
    launcher = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=_sigint(signal.SIG_DFL))  # Ctrl-C in a terminal
    deadline = time.monotonic() + 60
    waiting = None
    while waiting is None and time.monotonic() < deadline:
        time.sleep(0.5)
        if not (study_dir / "journal.log").exists():
            continue
        trials = load_study_dir(study_dir)[1].get_trials(deepcopy=False)
        claimed = [t for t in trials if t.state.name == "RUNNING" and t.user_attrs.get("training")]
        waiters = [t for t in trials if t.state.name == "RUNNING" and "knobs" in t.user_attrs
                   and not t.user_attrs.get("training")]
        if claimed and waiters:
            waiting = waiters[0].number
    assert waiting is not None, "no trial ended up waiting for a running twin"
    launcher.send_signal(signal.SIGINT)
    launcher.communicate(timeout=120)
    trials = load_study_dir(study_dir)[1].get_trials(deepcopy=False)
    assert not [t.number for t in trials if t.state.name == "RUNNING"]
    assert trials[waiting].state.name == "FAIL" and trials[waiting].user_attrs.get("interrupted")


# ---- issue 17: worker supervision --------------------------------------------------------------

def spread_yaml(n_trials: int, epochs: int) -> str:
    """A study of 12 knob settings whose trials each take ``epochs`` simulated epochs."""
    return study_yaml("spread", n_trials, seed=0, train={"epochs": epochs}, objectives=["wer", "latency_ms"],
                      space={"bits": [8, 32], "sparsity": [0.0, 0.25, 0.5], "chunk_ms": [160, 320]})


def _helpers(launcher_pid: int) -> list:
    import psutil

    return [p for p in psutil.Process(launcher_pid).children(recursive=True)
            if any(part == "search" for part in p.cmdline())]


def _wait_for(predicate, timeout_s: float = 60.0, poll_s: float = 0.3):
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    return None


def _running_trial_of(study_dir: Path, pid: int):
    from edgetune.search import load_study_dir

    if not (study_dir / "journal.log").exists():
        return None
    trials = load_study_dir(study_dir)[1].get_trials(deepcopy=False)
    return next((t for t in trials if t.state.name == "RUNNING" and t.user_attrs.get("training")
                 and (t.user_attrs.get("worker") or {}).get("pid") == pid), None)


@TWO_CORES
@pytest.mark.timeout(240)
def test_a_killed_helpers_trial_is_requeued_at_once_and_the_study_finishes(tmp_path: Path) -> None:
    """SIGKILL a helper mid-trial: the launcher re-queues that trial at its next trial, not after the
    study, so one run still finishes every trial; no empty trial folder is left."""
    import signal

    from edgetune.search import load_study_dir

    cfg = tmp_path / "spread.yaml"
    cfg.write_text(spread_yaml(n_trials=6, epochs=3))
    study_dir = tmp_path / "study"
    cmd, env = search_command(cfg, study_dir, "--simulate", "0.7", "--workers", "2", "--no-report")
    launcher = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        helper = _wait_for(lambda: (_helpers(launcher.pid) or [None])[0])
        assert helper is not None, "no helper worker started"
        victim = _wait_for(lambda: _running_trial_of(study_dir, helper.pid) and kill_mid_trial(
            helper.pid, lambda: [t for t in [_running_trial_of(study_dir, helper.pid)] if t]), poll_s=0.1)
        assert victim is not None, "the helper never started a trial"
        out, err = launcher.communicate(timeout=180)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    assert launcher.returncode == 1 and b"worker 1 exited with code -9" in err  # reported, not hidden
    trials = load_study_dir(study_dir)[1].get_trials(deepcopy=False)
    assert trials[victim.number].state.name == "FAIL"
    retry = [t for t in trials if t.user_attrs.get("retry_of") == victim.number]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE"  # retried within the same run
    assert sum(t.state.name == "COMPLETE" for t in trials) >= 6
    assert not (study_dir / "trials" / str(victim.number)).exists()
    assert [d.name for d in (study_dir / "trials").iterdir() if not any(d.iterdir())] == []


@TWO_CORES
@pytest.mark.timeout(240)
def test_helpers_exit_when_their_launcher_dies(tmp_path: Path) -> None:
    import signal

    import psutil

    cfg = tmp_path / "spread.yaml"
    cfg.write_text(spread_yaml(n_trials=40, epochs=20))
    study_dir = tmp_path / "study"
    cmd, env = search_command(cfg, study_dir, "--simulate", "1.0", "--workers", "2", "--no-report")
    # started as a script's background job (`edgetune search ... &`): SIGINT ignored, which the helper
    # would inherit, and then it would ignore the SIGINT the kernel sends when its launcher dies
    launcher = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=_sigint(signal.SIG_IGN))
    helper = None
    try:
        helper = _wait_for(lambda: (_helpers(launcher.pid) or [None])[0])
        assert helper is not None, "no helper worker started"
        assert _wait_for(lambda: _running_trial_of(study_dir, helper.pid)) is not None
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(30)
        gone, alive = psutil.wait_procs([helper], timeout=60)
        assert helper in gone, "the helper kept running after its launcher died"
    finally:
        if helper is not None and helper.is_running():
            helper.kill()
    from edgetune.search import load_study_dir

    trials = load_study_dir(study_dir)[1].get_trials(deepcopy=False)
    mine = [t for t in trials if (t.user_attrs.get("worker") or {}).get("pid") == helper.pid]
    assert mine and all(t.state.name != "RUNNING" for t in mine)  # it marked its trial interrupted on the way out
