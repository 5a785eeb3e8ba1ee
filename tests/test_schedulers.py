"""MO-ASHA against real Optuna studies (in-memory and journal file). Latency-first rejection is the
study loop's (tests/test_search_fidelity.py)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from functools import lru_cache
from pathlib import Path

import numpy as np
import optuna
import pytest

from edgetune.errors import ConfigError, StudyError
from edgetune.schedulers import (
    MOASHA,
    PRECHECK_ATTR,
    crowding_distance,
    dominates,
    is_stopped,
    n_promoted,
    non_dominated_sort,
    promoted_mask,
    rank_order,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
REPO = Path(__file__).resolve().parents[1]


def brute_force_ranks(points: np.ndarray) -> list[int]:
    """Front index by definition: 0 if nothing dominates you, else 1 + the worst front index of
    those that dominate you (the longest chain of dominators)."""

    @lru_cache(maxsize=None)
    def rank(i: int) -> int:
        doms = [j for j in range(len(points)) if dominates(points[j], points[i])]
        return 0 if not doms else 1 + max(rank(j) for j in doms)

    return [rank(i) for i in range(len(points))]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("m", [2, 3])
def test_non_dominated_sort_matches_brute_force(seed: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 6, size=(40, m)).astype(float)  # small ints: many ties and duplicates
    assert non_dominated_sort(pts).tolist() == brute_force_ranks(pts)
    mask = non_dominated_sort(pts) == 0
    for i in range(len(pts)):
        dominated = any(dominates(pts[j], pts[i]) for j in range(len(pts)))
        assert mask[i] == (not dominated)


def test_non_finite_rows_rank_last_and_empty_input() -> None:
    pts = np.array([[1.0, 1.0], [np.nan, 0.0], [2.0, 2.0], [0.0, np.inf]])
    ranks = non_dominated_sort(pts)
    assert ranks.tolist() == [0, 2, 1, 2]
    assert non_dominated_sort(np.zeros((0, 2))).tolist() == []
    assert rank_order(pts)[-2:].tolist() == [1, 3]


def test_crowding_distance_known_values() -> None:
    # one front on a line: extremes are infinite, inner points get (next - prev) / range per objective
    pts = np.array([[0.0, 4.0], [1.0, 3.0], [3.0, 1.0], [4.0, 0.0]])
    d = crowding_distance(pts)
    assert np.isinf(d[0]) and np.isinf(d[3])
    assert d[1] == pytest.approx((3 - 0) / 4 + (4 - 1) / 4)
    assert d[2] == pytest.approx((4 - 1) / 4 + (3 - 0) / 4)
    assert crowding_distance(np.array([[1.0, 1.0], [1.0, 1.0]])).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("n,eta", [(3, 3), (9, 3), (10, 3), (17, 3), (8, 2), (25, 4), (1, 3), (2, 3)])
def test_promotion_keeps_exactly_the_intended_fraction(n: int, eta: int) -> None:
    rng = np.random.default_rng(n * 31 + eta)
    pts = rng.random((n, 2))
    mask = promoted_mask(pts, eta)
    assert mask.sum() == max(1, n // eta) == n_promoted(n, eta)
    ranks = non_dominated_sort(pts)
    # what is promoted is never worse-ranked than what is not
    if (~mask).any():
        assert ranks[mask].max() <= ranks[~mask].min()
    # no stopped point dominates a promoted one
    for i in np.flatnonzero(mask):
        assert not any(dominates(pts[j], pts[i]) for j in np.flatnonzero(~mask))


def test_promotion_prefers_front_extremes_within_a_front() -> None:
    # 9 points on one front, eta=3 -> keep 3: both extremes (infinite crowding) then the most isolated
    xs = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0])
    pts = np.stack([xs, 1.0 - xs], axis=1)
    kept = set(np.flatnonzero(promoted_mask(pts, 3)).tolist())
    assert kept == {0, 8, 7}  # point 7 borders the wide gap to 8: largest crowding distance


def test_rungs_and_settings_validation() -> None:
    assert MOASHA(min_epochs=1, max_epochs=9, eta=3).rungs() == [1, 3]
    assert MOASHA(min_epochs=1, max_epochs=10, eta=3).rungs() == [1, 3, 9]
    assert MOASHA(min_epochs=2, max_epochs=16, eta=2).rungs() == [2, 4, 8]
    assert MOASHA(min_epochs=5, max_epochs=5).rungs() == []
    with pytest.raises(ConfigError, match="min_epochs <= max_epochs"):
        MOASHA(min_epochs=4, max_epochs=3)
    with pytest.raises(ConfigError, match="eta must be an integer >= 2"):
        MOASHA(eta=1)
    with pytest.raises(ConfigError, match="distinct"):
        MOASHA(objectives=("wer", "wer"))


def _study(storage: optuna.storages.BaseStorage | str | None = None, name: str = "s") -> optuna.Study:
    return optuna.create_study(
        directions=["minimize", "minimize"], storage=storage, study_name=name, load_if_exists=True
    )


def _report(study: optuna.Study, sched: MOASHA, vec: list[float], epoch: int = 1) -> tuple[optuna.Trial, bool]:
    trial = study.ask()
    stop = sched.should_stop(study, trial, epoch, vec)
    if stop:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    return trial, stop


def test_dominated_trial_stops_and_non_dominated_continues() -> None:
    study = _study()
    sched = MOASHA(min_epochs=1, max_epochs=9, eta=3, min_peers=3)
    # first peers: fewer than min_peers continue whatever they report
    assert _report(study, sched, [0.9, 900.0])[1] is False
    assert _report(study, sched, [0.20, 300.0])[1] is False
    # n = 3 -> keep 1; dominated by (0.20, 300): stopped, and recorded as such
    trial, stop = _report(study, sched, [0.25, 350.0])
    assert stop is True
    frozen = study.trials[trial.number]
    assert frozen.state == optuna.trial.TrialState.PRUNED
    assert frozen.user_attrs["stopped_at_rung"] == 0 and frozen.user_attrs["stopped_at_epoch"] == 1
    assert frozen.user_attrs["rung_0"] == [0.25, 350.0]
    assert is_stopped(frozen.user_attrs)
    # dominates every peer: continues, not marked
    trial, stop = _report(study, sched, [0.10, 250.0])
    assert stop is False and not is_stopped(study.trials[trial.number].user_attrs)
    # fill the rung to n = 9 (keep 3) with dominated points, then a non-dominated newcomer
    for k in range(4):
        _report(study, sched, [0.6 + 0.01 * k, 800.0])
    trial, stop = _report(study, sched, [0.40, 120.0])  # front: (0.10, 250), (0.40, 120) -> both kept
    assert stop is False
    trial, stop = _report(study, sched, [0.95, 910.0])  # n = 10, keep 3: rank 2+ -> stopped
    assert stop is True
    # epochs that are not rungs never record or stop
    t = study.ask()
    assert sched.should_stop(study, t, 2, [9.0, 9999.0]) is False
    assert "rung_1" not in study.trials[t.number].user_attrs and not study.trials[t.number].user_attrs


def test_values_as_mapping_and_bad_values() -> None:
    study = _study()
    sched = MOASHA(min_peers=1)
    t = study.ask()
    assert sched.should_stop(study, t, 1, {"latency_ms": 100.0, "wer": 0.3}) is False
    assert study.trials[t.number].user_attrs["rung_0"] == [0.3, 100.0]
    with pytest.raises(ValueError, match="lacks objective"):
        sched.should_stop(study, t, 1, {"wer": 0.3})
    with pytest.raises(ValueError, match="2 entries"):
        sched.should_stop(study, t, 1, [0.3])


def test_pruned_trials_never_reach_the_front() -> None:
    """A study.optimize loop: stopped trials end PRUNED, best_trials holds only fully trained ones."""
    sched = MOASHA(min_epochs=1, max_epochs=9, eta=3, min_peers=3)
    rng = np.random.default_rng(0)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        latency = 100.0 + 400.0 * x
        final = 0.1 + 0.3 * (1 - x) + 0.05 * rng.random()
        for epoch in range(1, 10):
            wer = final + 0.5 / epoch
            if sched.should_stop(trial.study, trial, epoch, [wer, latency]):
                raise optuna.TrialPruned()
        return final, latency

    study = _study()
    study.optimize(objective, n_trials=40)
    states = [t.state for t in study.trials]
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and optuna.trial.TrialState.COMPLETE in states
    assert all(t.user_attrs["stopped_at_rung"] in (0, 1) for t in pruned)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.best_trials)
    assert not any(is_stopped(t.user_attrs) for t in study.best_trials)
    # every decision was taken with the promotion rule: a pruned trial was not in the top at arrival
    assert study.user_attrs["moasha"] == sched.to_dict()


WORKER = textwrap.dedent(
    """
    import sys, optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from edgetune.schedulers import MOASHA
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(sys.argv[1]))
    study = optuna.load_study(study_name="shared", storage=storage)
    sched = MOASHA(min_epochs=1, max_epochs=9, eta=3, min_peers=3)
    for wer, lat in [(0.10, 100.0), (0.12, 90.0), (0.08, 120.0), (0.11, 95.0), (0.09, 110.0), (0.3, 50.0)]:
        t = study.ask()
        stop = sched.should_stop(study, t, 1, [wer, lat])
        study.tell(t, state=optuna.trial.TrialState.PRUNED) if stop else study.tell(t, [wer, lat])
    print("ok")
    """
)


def test_state_is_shared_between_workers_through_a_journal_file(tmp_path: Path) -> None:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal = str(tmp_path / "study.log")
    storage = JournalStorage(JournalFileBackend(journal))
    study = _study(storage, name="shared")
    # another process records rung results with its own scheduler object
    # keep the caller's PYTHONPATH: optuna may be installed there (e.g. a --target folder of wheels)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", WORKER, journal], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    # this process has never seen a rung result: its decision comes from the journal alone
    sched = MOASHA(min_epochs=1, max_epochs=9, eta=3, min_peers=3)
    assert len(sched.peers(study, 0)[0]) == 6
    _, stop = _report(study, sched, [0.2, 130.0])  # dominated by every peer
    assert stop is True
    _, stop = _report(study, sched, [0.05, 60.0])  # dominates most peers
    assert stop is False
    # a worker with other settings is refused instead of silently mixing schedules
    other = MOASHA(min_epochs=1, max_epochs=9, eta=2, min_peers=3)
    with pytest.raises(StudyError, match="same scheduler settings"):
        other.should_stop(study, study.ask(), 1, [0.1, 100.0])


def test_asynchronous_decisions_follow_the_rule_at_arrival() -> None:
    """Replay arrivals one by one; each decision equals the synchronous rule over results so far."""
    rng = np.random.default_rng(3)
    study = _study()
    sched = MOASHA(min_epochs=1, max_epochs=9, eta=3, min_peers=4)
    seen: list[list[float]] = []
    for _ in range(30):
        vec = [float(rng.random()), float(rng.random())]
        seen.append(vec)
        _, stop = _report(study, sched, vec)
        if len(seen) < 4:
            assert stop is False
        else:
            assert stop == (not promoted_mask(np.array(seen), 3)[-1])


def test_a_stopped_configuration_proposed_again_is_judged_again() -> None:
    """No resume: the same vector arriving again is ranked against the peers recorded by then."""
    study = _study()
    sched = MOASHA(min_epochs=1, max_epochs=9, eta=3, min_peers=1)
    for vec in ([0.1, 100.0], [0.3, 300.0]):
        _report(study, sched, vec)
    assert [t.state.name for t in study.trials] == ["RUNNING", "PRUNED"]
    _, stop = _report(study, sched, [0.3, 300.0])
    assert stop is True and not hasattr(sched, "resume_order")


def test_on_epoch_hook_takes_latency_from_the_precheck() -> None:
    """The study loop's hook: epoch metrics carry only the dev WER; latency comes from the precheck."""
    study = _study()
    sched = MOASHA(min_epochs=1, max_epochs=9, eta=3, min_peers=3)
    go_on = []
    for wer, lat in [(0.1, 100.0), (0.2, 200.0), (0.3, 300.0), (0.4, 400.0)]:
        t = study.ask()
        t.set_user_attr(PRECHECK_ATTR, {"latency_ms": lat, "size_bytes": 1e6})  # as the study loop writes it
        go_on.append(sched.on_epoch(study, t, 1, {"wer": wer, "loss": 1.0}))
        assert study.trials[t.number].user_attrs["rung_0"] == [wer, lat]
    assert go_on == [True, True, False, False]  # (0.3, 300) and (0.4, 400) are dominated by (0.1, 100)
    with pytest.raises(ValueError, match="measure the untrained candidate"):
        sched.on_epoch(study, study.ask(), 1, {"wer": 0.1})
