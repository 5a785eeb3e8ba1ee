"""Schedulers that spend a study's GPU time where it matters.

* :class:`MOASHA` -- multi-objective asynchronous successive halving: stops trials whose
  objective vector at an early epoch is dominated by enough of their peers (rule in
  ``_moasha.py``). State lives in the Optuna study, so workers share it.
* :func:`precheck` / :class:`Budgets` -- latency-first rejection: an untrained candidate
  that already breaks a latency or size budget is never trained.
* Pareto helpers (:func:`non_dominated_sort`, :func:`crowding_distance`, ...) -- pure numpy.

Light to import: numpy only; optuna is touched through the study/trial objects passed in.
"""

from edgetune.schedulers._budgets import PRECHECK_ATTR, REJECTED_ATTR, Budgets, Verdict, precheck, record_precheck
from edgetune.schedulers._moasha import (
    MOASHA,
    RESUMED_FROM_ATTR,
    RUNG_ATTR,
    STOPPED_AT_EPOCH_ATTR,
    STOPPED_AT_RUNG_ATTR,
    is_stopped,
    n_promoted,
    promoted_mask,
)
from edgetune.schedulers._pareto import (
    crowding_distance,
    dominates,
    non_dominated_sort,
    rank_order,
)

__all__ = [
    "MOASHA",
    "PRECHECK_ATTR",
    "REJECTED_ATTR",
    "RESUMED_FROM_ATTR",
    "RUNG_ATTR",
    "STOPPED_AT_EPOCH_ATTR",
    "STOPPED_AT_RUNG_ATTR",
    "Budgets",
    "Verdict",
    "crowding_distance",
    "dominates",
    "is_stopped",
    "n_promoted",
    "non_dominated_sort",
    "precheck",
    "promoted_mask",
    "rank_order",
    "record_precheck",
]
