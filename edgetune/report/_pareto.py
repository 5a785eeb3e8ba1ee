"""Moved to :mod:`edgetune._pareto` (the one Pareto module); kept so old imports work."""

from edgetune._pareto import (
    derive_reference_point,
    dominates,
    hypervolume,
    hypervolume_history,
    pareto_front,
    pareto_mask,
)

__all__ = [
    "derive_reference_point",
    "dominates",
    "hypervolume",
    "hypervolume_history",
    "pareto_front",
    "pareto_mask",
]
