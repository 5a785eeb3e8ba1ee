"""Four worker processes on one study in a real PostgreSQL server: nothing lost, nothing duplicated,
and a worker killed with SIGKILL mid-trial has its trial failed and its configuration run again.

The server comes from ``EDGETUNE_TEST_POSTGRES`` (``postgresql://user@host:port/db``); without it
the tests skip, unless ``EDGETUNE_REQUIRE_SERVICES=1``, which makes them fail. Every test uses a
study name of its own and deletes the study at the end. Workers are real ``run_study``
processes with the simulated runner (the storage, the study loop and the recovery are real; the
training is not).

Recovery paths (``edgetune.search._trials.recover_interrupted``, run when a worker starts and
before each of its trials):
- same host: the dead worker's pid is gone, so its RUNNING trial is failed at once by the next live
  worker to start a trial;
- another host: the pid cannot be checked, so Optuna's heartbeat decides
  (``fail_stale_trials``; fixed: Optuna wraps RDBStorage in _CachedStorage, which the
  old isinstance check missed). The test shortens the heartbeat to 1 s / grace 2 s inside its worker
  processes (the module constants of ``edgetune._storage``) and makes the victim report
  another host name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from _helpers import WIDE_SPACE, kill_mid_trial, study_config

from edgetune.search import StudyPaths, config_to_yaml, is_finished, is_interrupted, open_study

REPO = Path(__file__).resolve().parents[1]
HEARTBEAT_S, GRACE_S = 1, 2

#: this file's study (what differs from _helpers.STUDY): every knob and bit width searched, NSGA-II
CONFIG = {"seed": 7, "space": {**WIDE_SPACE, "bits": [4, 8, 16, 32]}, "train": {"epochs": 2},
          "sampler": {"name": "nsga2", "population_size": 4}}

WORKER = """
import socket, sys
import edgetune._storage as storage
import edgetune.search._study as study_loop
from edgetune.search import SimulatedRunner, load_config, run_study

cfg, study_dir, delay, host = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
storage.HEARTBEAT_INTERVAL_S, storage.HEARTBEAT_GRACE_S = int(sys.argv[5]), int(sys.argv[6])
if host != "here":  # pretend to run on another machine: only the heartbeat can tell it died
    real = study_loop.worker_info
    study_loop.worker_info = lambda: {**real(), "host": host}
run_study(load_config(cfg), study_dir, runner=SimulatedRunner(epoch_delay_s=delay), progress=False)
"""


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get("EDGETUNE_TEST_POSTGRES")
    if not url:
        if os.environ.get("EDGETUNE_REQUIRE_SERVICES") == "1":
            pytest.fail("EDGETUNE_TEST_POSTGRES is not set but EDGETUNE_REQUIRE_SERVICES=1")
        pytest.skip("set EDGETUNE_TEST_POSTGRES=postgresql://... to run")
    return url


class Workers:
    """Worker processes of one study, each with its own study directory (artifacts), one database."""

    def __init__(self, tmp: Path, url: str, n: int) -> None:
        self.name = f"pgw_{uuid.uuid4().hex[:12]}"
        self.config = study_config(self.name, n, storage=url, **CONFIG)
        self.tmp = tmp
        self.cfg_file = tmp / "study.in.yaml"
        self.cfg_file.write_text(config_to_yaml(self.config))
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def start(self, delay: float, host: str = "here") -> subprocess.Popen:
        study_dir = self.tmp / f"w{len(self.procs)}"
        args = [str(self.cfg_file), str(study_dir), str(delay), host, str(HEARTBEAT_S), str(GRACE_S)]
        proc = subprocess.Popen([sys.executable, "-c", WORKER, *args], env=self.env)
        self.procs.append(proc)
        return proc

    def trials(self) -> list[Any]:
        try:
            return open_study(self.config, StudyPaths(self.tmp / "reader"), create=False).get_trials()
        except Exception:  # not created yet
            return []

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        import optuna

        from edgetune.search._storage import sqlalchemy_url

        try:
            optuna.delete_study(study_name=self.name, storage=sqlalchemy_url(self.config.storage))
        except Exception:
            pass


def victims_running(trials: list[Any], pid: int) -> list[Any]:
    """The trials the worker with this pid has claimed and not finished."""
    return [t for t in trials if t.state.name == "RUNNING" and "knobs" in t.user_attrs
            and t.user_attrs.get("worker", {}).get("pid") == pid]


@pytest.fixture
def workers(tmp_path: Path, postgres_url: str):
    made: list[Workers] = []

    def make(n: int) -> Workers:
        made.append(Workers(tmp_path, postgres_url, n))
        return made[-1]

    yield make
    for w in made:
        w.close()


def check_nothing_lost_or_duplicated(trials: list[Any], n: int, n_workers: int) -> None:
    """Trial numbers contiguous, nothing left running, between n and n + workers - 1 finished
    (each worker stops once finished + running reaches n, so simultaneous asks may overshoot),
    and a candidate run twice only as a marked duplicate or by two workers at the same time."""
    assert [t.number for t in trials] == list(range(len(trials)))
    assert not [t.number for t in trials if t.state.name in ("RUNNING", "WAITING")]
    finished = [t for t in trials if is_finished(t)]
    assert n <= len(finished) <= n + n_workers - 1
    assert not [t.number for t in trials if t.state.name == "FAIL" and not is_interrupted(t)]  # runner never fails
    originals: dict[str, Any] = {}
    for t in sorted((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.number):
        key = repr(sorted(t.user_attrs["knobs"].items()))
        dup_of = t.user_attrs.get("duplicate_of")
        if dup_of is not None:
            orig = trials[dup_of]
            assert orig.state.name == "COMPLETE" and orig.user_attrs["knobs"] == t.user_attrs["knobs"]
            assert t.values == orig.values
            continue
        if key in originals:  # trained twice: only allowed when both ran at once on two workers
            first = originals[key]
            assert t.datetime_start < first.datetime_complete, f"#{t.number} re-trained #{first.number}"
            assert t.user_attrs["worker"]["pid"] != first.user_attrs["worker"]["pid"]
        originals.setdefault(key, t)


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_four_workers_lose_and_duplicate_no_trial(workers) -> None:
    n, n_workers = 16, 4
    w = workers(n)
    for _ in range(n_workers):
        w.start(delay=0.05)
    for p in w.procs:
        assert p.wait(timeout=150) == 0
    trials = w.trials()
    check_nothing_lost_or_duplicated(trials, n, n_workers)
    pids = {t.user_attrs["worker"]["pid"] for t in trials}
    assert len(pids) >= 2  # the study really was shared
    assert pids <= {p.pid for p in w.procs}
    for t in trials:  # every result's artifact exists in its worker's directory, whole
        if t.state.name == "COMPLETE" and "duplicate_of" not in t.user_attrs:
            i = [p.pid for p in w.procs].index(t.user_attrs["worker"]["pid"])
            from edgetune._io import sha256_file

            assert sha256_file(w.tmp / f"w{i}" / t.user_attrs["artifact"]) == t.user_attrs["sha256"]


@pytest.mark.postgres
@pytest.mark.timeout(240)
@pytest.mark.parametrize("victim_host", [
    "here",
    pytest.param("elsewhere", marks=[pytest.mark.slow]),
])
def test_sigkilled_worker_trial_is_failed_and_retried(workers, victim_host: str) -> None:
    """Kill one of four workers mid-trial, then start a replacement worker (as a supervisor would):
    the killed trial is marked FAIL (interrupted) and its configuration runs again exactly once."""
    n, n_workers = 24, 4
    w = workers(n)
    victim = w.start(delay=0.4, host=victim_host)
    for _ in range(n_workers - 1):
        w.start(delay=0.4)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and victim.poll() is None:
        time.sleep(0.1)
        trials = w.trials()
        if not victims_running(trials, victim.pid) or sum(is_finished(t) for t in trials) < 1:
            continue
        trial = kill_mid_trial(victim.pid, lambda: victims_running(w.trials(), victim.pid))
        killed = None if trial is None else trial.number
    assert killed is not None, "the victim finished or stalled before it could be killed"
    assert victim.wait(timeout=10) == -signal.SIGKILL
    if victim_host != "here":
        time.sleep(GRACE_S + HEARTBEAT_S + 0.5)  # let the dead trial's heartbeat go stale
    trials = w.trials()
    if victim_host == "here":
        # the live workers notice the dead pid at their next trial and re-queue it at once (issue 17),
        # not only when a new worker starts or the study ends
        def recovered(ts) -> bool:  # marked interrupted, and its retry queued (two writes: poll for both)
            return is_interrupted(ts[killed]) and any(t.user_attrs.get("retry_of") == killed for t in ts)

        deadline = time.monotonic() + 60
        while not recovered(trials) and time.monotonic() < deadline:
            time.sleep(0.2)
            trials = w.trials()
        assert is_interrupted(trials[killed]), "the live workers never recovered the dead worker's trial"
        assert any(t.user_attrs.get("retry_of") == killed for t in trials)
    else:  # a worker waiting for the same knobs may already have failed the stale trial
        assert trials[killed].state.name == "RUNNING" or is_interrupted(trials[killed])
    assert sum(is_finished(t) for t in trials) < n - 2, "the study ended before the restart; raise n"
    w.start(delay=0.4)  # the replacement: recovers the dead trial when it starts
    for p in w.procs[1:]:
        assert p.wait(timeout=180) == 0
    trials = w.trials()
    dead = trials[killed]
    assert dead.state.name == "FAIL" and is_interrupted(dead) and "fail_reason" not in dead.user_attrs
    retries = [t for t in trials if t.user_attrs.get("retry_of") == killed]
    assert len(retries) == 1
    assert retries[0].params == dead.params and retries[0].state.name == "COMPLETE"
    check_nothing_lost_or_duplicated(trials, n, n_workers)
