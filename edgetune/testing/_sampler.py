"""The contract every study sampler keeps, as a pytest suite to subclass per sampler.

A test module subclasses :class:`SamplerContract` and sets ``name`` (a sampler registered with
:func:`edgetune.search.register_sampler`) and, where it reads some, ``options`` (its
``sampler:`` settings). The suite checks that the sampler, built the way a study builds it:

* proposes every searched knob, each within the study's space (choices, ranges and steps);
* honours the seed: the same seed gives the same proposals, another seed other ones;
* drives a three-objective study with a budget through ``run_study`` and the simulated
  runner, and a study stopped half-way resumes to the same trials as one run straight through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pytest

#: a finite space (every range has a step), so grid-like samplers can search it too
SPACE = {
    "bits": [4, 8, 32],
    "sparsity": {"low": 0.0, "high": 0.8, "step": 0.2},
    "depth_multiplier": {"low": 0.25, "high": 1.0, "step": 0.25},
    "chunk_ms": [160, 320],
}


class SamplerContract:
    """Proposals in the space, seeding, multi-objective studies and resume; set ``name``."""

    name: str = ""
    options: Mapping[str, Any] = {}
    n_proposals: int = 8

    def config(self, *, seed: int = 0, n_trials: int = 8, objectives: tuple[str, ...] = ("wer", "latency_ms"),
               **extra: Any) -> Any:
        """A study config searching :data:`SPACE` with this sampler."""
        from edgetune.search import StudyConfig

        return StudyConfig.from_dict({
            "study_name": f"contract-{self.name}", "n_trials": n_trials, "seed": seed, "space": SPACE,
            "objectives": list(objectives), "train": {"epochs": 1},
            "sampler": {"name": self.name, **self.options}, **extra})

    def propose(self, config: Any, n: int) -> list[dict[str, Any]]:
        """``n`` ask-and-tell rounds on an in-memory study, told the simulated runner's values."""
        import optuna

        from edgetune.search import SimulatedRunner, make_sampler, metric_values

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(directions=config.directions, sampler=make_sampler(config, 0))
        runner, proposed = SimulatedRunner(), []
        for _ in range(n):
            trial = study.ask()
            knobs = config.space.suggest(trial)
            measured = metric_values(runner.analytic(knobs, config.train.epochs))
            study.tell(trial, [measured[o] for o in config.objectives])
            proposed.append(dict(trial.params))
        return proposed

    def test_is_registered_and_named_in_the_config(self) -> None:
        from edgetune.search import get_sampler, samplers

        assert self.name in samplers() and get_sampler(self.name).name == self.name
        assert self.config().sampler.name.value == self.name

    def test_proposals_lie_in_the_space(self) -> None:
        config = self.config()
        proposed = self.propose(config, self.n_proposals)
        assert len(proposed) == self.n_proposals
        for params in proposed:
            assert set(params) == set(config.space.searched), params
            assert config.space.contains(params), f"{params} lies outside the space {SPACE}"
        assert len({tuple(sorted(p.items())) for p in proposed}) > 1, "the sampler proposed one point only"

    def test_same_seed_same_proposals(self) -> None:
        assert self.propose(self.config(seed=5), self.n_proposals) == self.propose(self.config(seed=5), self.n_proposals)

    def test_another_seed_other_proposals(self) -> None:
        assert self.propose(self.config(seed=5), self.n_proposals) != self.propose(self.config(seed=6), self.n_proposals)

    def _study(self, config: Any, study_dir: Path, **kw: Any) -> tuple[Any, list[Any]]:
        from edgetune.search import SimulatedRunner, StudyPaths, open_study, run_study

        summary = run_study(config, study_dir, runner=SimulatedRunner(), progress=False, **kw)
        return summary, open_study(config, StudyPaths(study_dir), create=False).get_trials()

    def test_three_objectives_and_a_budget_through_run_study(self, tmp_path: Path) -> None:
        config = self.config(n_trials=6, objectives=("wer", "latency_ms", "size_bytes"),
                             budgets=["latency_ms <= 400"])
        summary, trials = self._study(config, tmp_path)
        assert summary.finished == 6 and summary.complete == 6
        assert all(config.space.contains(t.params) and len(t.values) == 3 for t in trials)
        assert summary.front and all(trials[n].constraints["latency_ms_max"] <= 0 for n in summary.front)

    def test_a_resumed_study_matches_one_run_straight_through(self, tmp_path: Path) -> None:
        config = self.config(n_trials=6)
        self._study(config, tmp_path / "resumed", max_new_trials=3)
        summary, resumed = self._study(config, tmp_path / "resumed")
        _, straight = self._study(config, tmp_path / "straight")
        assert summary.finished == 6 and [t.number for t in resumed] == list(range(6))
        assert [t.params for t in resumed[:3]] == [t.params for t in straight[:3]]
        self._study(config, tmp_path / "again", max_new_trials=3)
        again = self._study(config, tmp_path / "again")[1]
        assert [t.params for t in again] == [t.params for t in resumed]  # resuming is deterministic too


__all__ = ["SPACE", "SamplerContract"]
