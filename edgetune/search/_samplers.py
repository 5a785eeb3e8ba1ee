"""Study samplers named by a key (``nsga2``, ``nsga3``, ``tpe``, ``gp``, ``random``, ``grid``),
and the grid sampler adapted to ask-and-tell.

Each sampler is registered (:func:`register_sampler`: name, the ``sampler:`` settings it reads,
factory, and for samplers that need them a config check and an "exhausted" test), so a new one
is one factory function plus its registration; ``sampler: {name: ...}`` in a study config then
accepts it, and an unknown name lists the registered ones. Factories import optuna when called,
so this module (read when a config is validated) stays light.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from edgetune._registry import Registry
from edgetune.search._space import KeyConfigError
from edgetune.search._trials import is_finished

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from edgetune.search._config import StudyConfig

Factory = Callable[["StudyConfig", int], "optuna.samplers.BaseSampler"]  # (config, seed) -> sampler


@dataclass(frozen=True)
class SamplerKind:
    """One registered sampler.

    ``factory(config, seed)`` builds it; ``options`` are the ``sampler:`` keys it reads
    (``population_size``, ``n_startup_trials``). ``check(config)`` rejects a config it cannot
    search (raise KeyConfigError naming the key). ``exhausted(study, config)`` tells the loop the
    sampler has nothing new to propose before ``n_trials`` (a finite grid). ``enqueue``: whether
    the loop queues the baseline and ``sampler.enqueue`` first (a grid already holds them)."""

    name: str
    factory: Factory
    options: tuple[str, ...] = ()
    check: Callable[["StudyConfig"], None] | None = None
    exhausted: Callable[["optuna.Study", "StudyConfig"], bool] | None = None
    enqueue: bool = True


_SAMPLERS: Registry[SamplerKind] = Registry(
    lambda name, names: KeyConfigError("sampler.name", f"must be one of {', '.join(names)}, but got {name!r}"))


def register_sampler(name: str, factory: Factory, *, options: Iterable[str] = (),
                     check: Callable[["StudyConfig"], None] | None = None,
                     exhausted: Callable[["optuna.Study", "StudyConfig"], bool] | None = None,
                     enqueue: bool = True) -> SamplerKind:
    """Make ``sampler: {name: NAME}`` build ``factory(config, seed)`` (re-registering replaces it)."""
    if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
        raise ValueError(f"a sampler name is a lower-case identifier like 'nsga2', but got {name!r}")
    from edgetune.search._config import SamplerConfig

    fields = set(SamplerConfig.__dataclass_fields__)
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(f"sampler {name!r}: options {unknown} are not sampler settings; valid: {sorted(fields)}")
    return _SAMPLERS.register(name, SamplerKind(name, factory, tuple(options), check, exhausted, bool(enqueue)))


def get_sampler(name: Any) -> SamplerKind:
    """The registered sampler ``name`` (a string or :class:`SamplerName`); ConfigError listing
    the registered ones when unknown."""
    return _SAMPLERS.get(getattr(name, "value", name))


def samplers() -> list[str]:
    """The registered sampler names, in registration order."""
    return _SAMPLERS.names()


def make_sampler(config: "StudyConfig", n_existing: int) -> "optuna.samplers.BaseSampler":
    """The configured sampler. Its seed is ``seed + trials so far``: deterministic for a given
    history, yet a resumed run does not replay the random stream of the first run."""
    return get_sampler(config.sampler.name).factory(config, config.seed + n_existing)


# ----------------------------------------------------------------------------- the built-in samplers


def _nsga2(config: "StudyConfig", seed: int) -> "optuna.samplers.BaseSampler":
    import optuna

    return optuna.samplers.NSGAIISampler(population_size=config.sampler.population_size, seed=seed)


def _nsga3(config: "StudyConfig", seed: int) -> "optuna.samplers.BaseSampler":
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.NSGAIIISampler(population_size=config.sampler.population_size, seed=seed)


def _tpe(config: "StudyConfig", seed: int) -> "optuna.samplers.BaseSampler":
    import optuna

    return optuna.samplers.TPESampler(n_startup_trials=config.sampler.n_startup_trials, seed=seed)


def _gp(config: "StudyConfig", seed: int) -> "optuna.samplers.BaseSampler":
    import optuna

    return optuna.samplers.GPSampler(n_startup_trials=config.sampler.n_startup_trials, seed=seed)


def _random(config: "StudyConfig", seed: int) -> "optuna.samplers.BaseSampler":
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _grid(config: "StudyConfig", seed: int) -> "optuna.samplers.BaseSampler":
    return _GridSampler(config.space.grid(), seed=seed)


def _check_grid(config: "StudyConfig") -> None:
    try:
        grid = config.space.grid()
    except KeyConfigError as exc:
        raise KeyConfigError(exc.path, exc.detail) from None
    if not grid:
        raise KeyConfigError("space", "the grid sampler needs at least one searched knob")


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


def grid_exhausted(study: "optuna.Study", config: "StudyConfig") -> bool:
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


register_sampler("nsga2", _nsga2, options=("population_size",))
register_sampler("nsga3", _nsga3, options=("population_size",))
register_sampler("tpe", _tpe, options=("n_startup_trials",))
register_sampler("gp", _gp, options=("n_startup_trials",))
register_sampler("random", _random)
register_sampler("grid", _grid, check=_check_grid, exhausted=grid_exhausted, enqueue=False)

__all__ = ["SamplerKind", "get_sampler", "grid_exhausted", "make_sampler", "register_sampler", "samplers"]
