"""Schedulers named by a key (``none``, ``moasha``): the name a study config's ``scheduler:``
section gives, the settings it reads, and the factory that builds it.

A new scheduler is one class with the :class:`~edgetune.schedulers.TrialScheduler` hook
(``on_epoch``) plus one :func:`register_scheduler` call; ``scheduler: {name: ...}`` then accepts
it, and an unknown name lists the registered ones. The factory is called as
``factory(max_epochs=..., objectives=..., **options)`` with the study's ``train.epochs``, its
objectives and the ``scheduler:`` settings named in ``options`` (``min_epochs``, ``eta``,
``min_peers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from edgetune._registry import Registry
from edgetune.errors import ConfigError
from edgetune.schedulers._moasha import MOASHA

if TYPE_CHECKING:  # pragma: no cover
    from edgetune.schedulers._base import TrialScheduler

#: the ``scheduler:`` settings a registered scheduler may read
SETTINGS = ("min_epochs", "eta", "min_peers")


@dataclass(frozen=True)
class SchedulerKind:
    """One registered scheduler: its name, the ``scheduler:`` settings it reads and its factory
    ``(max_epochs=, objectives=, **options) -> TrialScheduler`` (None: no scheduling)."""

    name: str
    options: tuple[str, ...]
    factory: Callable[..., "TrialScheduler | None"]

    def make(self, settings: Mapping[str, Any], *, max_epochs: int, objectives: Sequence[str]) -> "TrialScheduler | None":
        """The scheduler for a study of ``max_epochs`` epochs; only the options it reads are passed."""
        options = {k: settings[k] for k in self.options if k in settings}
        return self.factory(max_epochs=max_epochs, objectives=tuple(objectives), **options)


_SCHEDULERS: Registry[SchedulerKind] = Registry(
    lambda name, names: ConfigError(f"unknown scheduler {name!r}; registered schedulers are {', '.join(names)}"))


def register_scheduler(name: str, options: Iterable[str], factory: Callable[..., "TrialScheduler | None"]) -> SchedulerKind:
    """Make ``scheduler: {name: NAME}`` build ``factory`` (re-registering replaces it)."""
    options = tuple(options)
    if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
        raise ValueError(f"a scheduler name is a lower-case identifier like 'moasha', but got {name!r}")
    unknown = sorted(set(options) - set(SETTINGS))
    if unknown:
        raise ValueError(f"scheduler {name!r}: options {unknown} are not scheduler settings; valid: {list(SETTINGS)}")
    return _SCHEDULERS.register(name, SchedulerKind(name, options, factory))


def get_scheduler(name: str) -> SchedulerKind:
    """The registered scheduler ``name``; ConfigError listing the registered ones when unknown."""
    return _SCHEDULERS.get(name)


def schedulers() -> list[str]:
    """The registered scheduler names, in registration order (``none`` first)."""
    return _SCHEDULERS.names()


def make_scheduler(name: str, settings: Mapping[str, Any], *, max_epochs: int,
                   objectives: Sequence[str]) -> "TrialScheduler | None":
    """Build the registered scheduler ``name`` (None for ``none``)."""
    return get_scheduler(name).make(settings, max_epochs=max_epochs, objectives=objectives)


def _no_scheduler(**_: Any) -> None:
    return None


register_scheduler("none", (), _no_scheduler)
register_scheduler("moasha", ("min_epochs", "eta", "min_peers"), MOASHA)

__all__ = ["SETTINGS", "SchedulerKind", "get_scheduler", "make_scheduler", "register_scheduler", "schedulers"]
