"""The contract every multi-fidelity scheduler keeps, as a pytest suite to subclass per scheduler.

A test module subclasses :class:`SchedulerContract` and sets ``name`` (a scheduler registered
with :func:`edgetune.schedulers.register_scheduler`) and ``options`` (its ``scheduler:``
settings). The suite feeds the scheduler epoch reports the way the study loop does (dev WER in
the metrics, latency from the untrained measurement in the ``precheck`` attribute) on real
Optuna studies and checks that its decisions are well formed:

* every decision is a bool, and a trial is only ever stopped before its last epoch;
* a trial better than all its peers at every epoch is never stopped, while trials dominated
  by several peers are;
* the same reports give the same decisions, also when a fresh scheduler (a restarted or second
  worker) picks up a study from its storage half-way;
* a study naming it runs through ``run_study`` and the simulated runner, and resumes.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Mapping

import pytest

Curve = tuple[float, list[float]]  # (latency_ms, dev WER after each epoch)


class SchedulerContract:
    """Well-formed, deterministic, resumable decisions; set ``name`` and ``options``."""

    name: str = ""
    options: Mapping[str, Any] = {}
    max_epochs: int = 9
    objectives: tuple[str, ...] = ("wer", "latency_ms")

    def make(self) -> Any:
        """A fresh scheduler, built from the registry as a study builds it."""
        from edgetune.schedulers import make_scheduler

        scheduler = make_scheduler(self.name, self.options, max_epochs=self.max_epochs, objectives=self.objectives)
        assert scheduler is not None and callable(getattr(scheduler, "on_epoch", None))
        return scheduler

    def curves(self, n: int, seed: int = 0) -> list[Curve]:
        """``n`` trials: a latency and a WER that falls with each epoch, from a seeded generator."""
        rng = random.Random(seed)
        out = []
        for _ in range(n):
            base = rng.uniform(0.1, 0.8)
            out.append((rng.uniform(50.0, 300.0), [base * (1 + 2.0 / e) for e in range(1, self.max_epochs + 1)]))
        return out

    def drive(self, study: Any, scheduler: Any, curves: list[Curve]) -> list[int | None]:
        """Run each curve as one trial, as the loop does; the epoch it was stopped after, or None."""
        from optuna.trial import TrialState

        from edgetune.schedulers import PRECHECK_ATTR

        stops: list[int | None] = []
        for latency, wers in curves:
            trial = study.ask()
            trial.set_user_attr(PRECHECK_ATTR, {"latency_ms": latency, "size_bytes": 1e6})
            stopped = None
            for epoch, wer in enumerate(wers, start=1):
                go = scheduler.on_epoch(study, trial, epoch, {"wer": wer, "dev_loss": 3 * wer, "seconds": 0.0})
                assert isinstance(go, bool), f"on_epoch must return True (go on) or False (stop), got {go!r}"
                if not go:
                    stopped = epoch
                    break
            if stopped is None:
                study.tell(trial, [wers[-1], latency])
            else:
                study.tell(trial, state=TrialState.PRUNED)
            stops.append(stopped)
        return stops

    @staticmethod
    def study(storage: Any = None, name: str = "contract") -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return optuna.create_study(study_name=name, storage=storage, directions=["minimize", "minimize"],
                                   load_if_exists=True)

    def test_is_registered_and_named_in_the_config(self) -> None:
        from edgetune.schedulers import get_scheduler, schedulers
        from edgetune.search import SchedulerConfig

        assert self.name in schedulers() and get_scheduler(self.name).name == self.name
        assert SchedulerConfig(name=self.name, **self.options).name == self.name

    def test_decisions_are_booleans_and_stop_before_the_last_epoch(self) -> None:
        stops = self.drive(self.study(), self.make(), self.curves(12))
        assert all(s is None or 1 <= s < self.max_epochs for s in stops), stops

    def test_a_trial_better_than_every_peer_is_never_stopped(self) -> None:
        study, scheduler = self.study(), self.make()
        self.drive(study, scheduler, self.curves(10))
        best = (1.0, [1e-4 * (1 + 1.0 / e) for e in range(1, self.max_epochs + 1)])
        assert self.drive(study, scheduler, [best]) == [None]

    def test_trials_dominated_by_their_peers_are_stopped(self) -> None:
        good = [(10.0 + i, [(0.03 - 0.01 * i) / e for e in range(1, self.max_epochs + 1)]) for i in range(3)]
        bad = [(500.0 + i, [0.9 + 0.01 * i for _ in range(self.max_epochs)]) for i in range(6)]
        stops = self.drive(self.study(), self.make(), good + bad)
        assert stops[0] is None and any(s is not None for s in stops[3:]), stops

    def test_same_reports_same_decisions(self) -> None:
        curves = self.curves(12, seed=1)
        assert self.drive(self.study(), self.make(), curves) == self.drive(self.study(), self.make(), curves)

    def test_a_fresh_scheduler_resumes_a_study_from_its_storage(self, tmp_path: Path) -> None:
        from edgetune._storage import journal_storage

        curves = self.curves(12, seed=2)
        straight = self.drive(self.study(), self.make(), curves)
        first = self.drive(self.study(journal_storage(tmp_path / "j.log")), self.make(), curves[:6])
        # a restarted worker: a new storage object on the same file, a new scheduler
        second = self.drive(self.study(journal_storage(tmp_path / "j.log")), self.make(), curves[6:])
        assert first + second == straight

    def _run(self, study_dir: Path, **kw: Any) -> tuple[Any, list[Any]]:
        from edgetune.search import SimulatedRunner, StudyConfig, StudyPaths, open_study, run_study

        config = StudyConfig.from_dict({
            "study_name": f"contract-{self.name}", "n_trials": 10, "seed": 0,
            "space": {"bits": [4, 8, 32], "sparsity": {"low": 0.0, "high": 0.8, "step": 0.1},
                      "chunk_ms": [160, 320, 640]},
            "objectives": list(self.objectives), "train": {"epochs": self.max_epochs},
            "sampler": {"name": "random"}, "scheduler": {"name": self.name, **self.options}})
        summary = run_study(config, study_dir, runner=SimulatedRunner(), progress=False, **kw)
        return summary, open_study(config, StudyPaths(study_dir), create=False).get_trials()

    def test_a_study_naming_it_runs_and_resumes(self, tmp_path: Path) -> None:
        from edgetune.schedulers import PRECHECK_ATTR

        self._run(tmp_path, max_new_trials=4)
        summary, trials = self._run(tmp_path)
        assert summary.finished == 10 and summary.complete + sum(t.state.name == "PRUNED" for t in trials) == 10
        trained = [t for t in trials if "duplicate_of" not in t.user_attrs]
        assert all(PRECHECK_ATTR in t.user_attrs for t in trained)  # the loop measured before training
        for t in trained:
            if t.state.name == "COMPLETE":
                assert t.user_attrs["epochs_run"] == self.max_epochs  # a finished trial trained fully


__all__ = ["SchedulerContract"]
