"""Schedulers that spend a study's GPU time where it matters.

* :class:`MOASHA` -- multi-objective asynchronous successive halving: stops trials whose
  objective vector at an early epoch is dominated by enough of their peers (rule in
  ``_moasha.py``). State lives in the Optuna study, so workers share it.
* A registry (:func:`register_scheduler`, :func:`get_scheduler`): the names a study config's
  ``scheduler: {name: ...}`` accepts (``none``, ``moasha``, and any registered later).
* Pareto helpers (:func:`non_dominated_sort`, :func:`crowding_distance`, ...) -- pure numpy,
  from :mod:`edgetune._pareto` (the one Pareto module, shared with the report).

Light to import: numpy only; optuna is touched through the study/trial objects passed in.
"""

from edgetune._pareto import (
    crowding_distance,
    dominates,
    non_dominated_sort,
    rank_order,
)
from edgetune.schedulers._base import TrialScheduler
from edgetune.schedulers._moasha import (
    MOASHA,
    PRECHECK_ATTR,
    RUNG_ATTR,
    STOPPED_AT_EPOCH_ATTR,
    STOPPED_AT_RUNG_ATTR,
    is_stopped,
    n_promoted,
    promoted_mask,
)
from edgetune.schedulers._registry import (
    SchedulerKind,
    get_scheduler,
    make_scheduler,
    register_scheduler,
    schedulers,
)

__all__ = [
    "MOASHA",
    "PRECHECK_ATTR",
    "RUNG_ATTR",
    "STOPPED_AT_EPOCH_ATTR",
    "STOPPED_AT_RUNG_ATTR",
    "SchedulerKind",
    "TrialScheduler",
    "crowding_distance",
    "dominates",
    "get_scheduler",
    "is_stopped",
    "make_scheduler",
    "n_promoted",
    "non_dominated_sort",
    "promoted_mask",
    "rank_order",
    "register_scheduler",
    "schedulers",
]
