"""The configured Optuna sampler, and the grid sampler adapted to ask-and-tell."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from edgetune.errors import ConfigError
from edgetune.search._config import SamplerName, StudyConfig
from edgetune.search._trials import is_finished

if TYPE_CHECKING:  # pragma: no cover
    import optuna


def make_sampler(config: StudyConfig, n_existing: int) -> "optuna.samplers.BaseSampler":
    """The configured sampler. Its seed is ``seed + trials so far``: deterministic for a given
    history, yet a resumed run does not replay the random stream of the first run."""
    import optuna

    seed = config.seed + n_existing
    s = config.sampler
    if s.name is SamplerName.NSGA2:
        return optuna.samplers.NSGAIISampler(population_size=s.population_size, seed=seed)
    if s.name is SamplerName.NSGA3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.NSGAIIISampler(population_size=s.population_size, seed=seed)
    if s.name is SamplerName.TPE:
        return optuna.samplers.TPESampler(n_startup_trials=s.n_startup_trials, seed=seed)
    if s.name is SamplerName.GP:
        return optuna.samplers.GPSampler(n_startup_trials=s.n_startup_trials, seed=seed)
    if s.name is SamplerName.RANDOM:
        return optuna.samplers.RandomSampler(seed=seed)
    if s.name is SamplerName.GRID:
        return _GridSampler(config.space.grid(), seed=seed)
    raise ConfigError(f"sampler.name {s.name!r} has no sampler")  # pragma: no cover


def _grid_sampler_class() -> type:
    import optuna

    class GridSampler(optuna.samplers.GridSampler):
        """Optuna's grid sampler, for ask-and-tell: its ``after_trial`` calls ``study.stop()``,
        which raises outside ``study.optimize`` once the grid is done; the loop stops itself
        (:func:`grid_exhausted`)."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            try:
                super().after_trial(study, trial, state, values)
            except RuntimeError as exc:
                if "Study.stop" not in str(exc):
                    raise

    return GridSampler


def _GridSampler(grid: dict[str, list[Any]], seed: int) -> "optuna.samplers.BaseSampler":
    return _grid_sampler_class()(grid, seed=seed)


def grid_exhausted(study: "optuna.Study", config: StudyConfig) -> bool:
    """True once every point of the grid has a finished trial (then the grid study is done)."""
    grid = config.space.grid()
    size = 1
    for values in grid.values():
        size *= len(values)
    seen = {
        tuple(t.params.get(k) for k in grid)
        for t in study.get_trials(deepcopy=False)
        if is_finished(t) and all(k in t.params for k in grid)
    }
    return len(seen) >= size


__all__ = ["grid_exhausted", "make_sampler"]
