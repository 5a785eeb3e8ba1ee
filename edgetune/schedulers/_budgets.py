"""Latency-first rejection: say a candidate is infeasible before spending any training on it.

A candidate's latency and size on the device depend on its architecture (bits, structured
sparsity, depth multiplier, chunk size), not on its trained weights. So the study loop can
export the *untrained* candidate, measure it (seconds), and skip training when a budget
is already broken. The same numbers become Optuna constraints (``trial.set_constraint``,
``<= 0`` is feasible), so NSGA-II's constrained domination steers away from the region.

Constraint values are relative (``measured / budget - 1``), so violations of budgets in
different units (ms, bytes) add up comparably in NSGA-II's total violation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgetune.errors import ConfigError

if TYPE_CHECKING:
    import optuna

REJECTED_ATTR = "rejected_by_budget"
PRECHECK_ATTR = "precheck"


def _budget(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number (or unset for no budget), but got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Budgets:
    """Hard limits a deployable candidate must meet; ``None`` means no limit on that quantity."""

    max_latency_ms: float | None = None
    max_size_bytes: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_latency_ms", _budget("max_latency_ms", self.max_latency_ms))
        object.__setattr__(self, "max_size_bytes", _budget("max_size_bytes", self.max_size_bytes))

    def constraints(self, latency_ms: float, size_bytes: float) -> dict[str, float]:
        """Optuna constraint values, one per set budget: ``measured / budget - 1`` (``<= 0`` feasible)."""
        out: dict[str, float] = {}
        for name, measured, limit in (
            ("latency_ms", latency_ms, self.max_latency_ms),
            ("size_bytes", size_bytes, self.max_size_bytes),
        ):
            if limit is None:
                continue
            m = float(measured)
            if math.isnan(m):
                raise ValueError(f"{name} measurement is NaN; measure the candidate again")
            out[name] = m / limit - 1.0
        return out

    def to_dict(self) -> dict[str, float | None]:
        return {"max_latency_ms": self.max_latency_ms, "max_size_bytes": self.max_size_bytes}


@dataclass(frozen=True)
class Verdict:
    """Outcome of :func:`precheck`: feasible or not, the constraint values, and why not."""

    feasible: bool
    constraints: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    measured: dict[str, float] = field(default_factory=dict)


def precheck(budgets: Budgets, latency_ms: float, size_bytes: float) -> Verdict:
    """Judge an untrained candidate from its measured latency and size, before any training.

    ``reason`` names each broken budget with the measured value, e.g.
    ``"latency_ms 812.0 > budget 700.0"``; empty when feasible.
    """
    cons = budgets.constraints(latency_ms, size_bytes)
    measured = {"latency_ms": float(latency_ms), "size_bytes": float(size_bytes)}
    limits = {"latency_ms": budgets.max_latency_ms, "size_bytes": budgets.max_size_bytes}
    broken = [f"{k} {measured[k]:g} > budget {limits[k]:g}" for k, v in cons.items() if v > 0]
    return Verdict(feasible=not broken, constraints=cons, reason="; ".join(broken), measured=measured)


def record_precheck(trial: "optuna.Trial", verdict: Verdict) -> None:
    """Write a verdict onto an Optuna trial: its constraints, the measurements (user attribute
    ``precheck``, read by :meth:`MOASHA.on_epoch`), and ``rejected_by_budget`` if infeasible.

    A rejected trial has no WER: end it as ``TrialState.PRUNED`` (it then never reaches the
    front nor NSGA-II's parents); its constraint values stay on record.
    """
    for name, value in verdict.constraints.items():
        trial.set_constraint(name, value)
    trial.set_user_attr(PRECHECK_ATTR, verdict.measured)
    if not verdict.feasible:
        trial.set_user_attr(REJECTED_ATTR, verdict.reason)


__all__ = ["PRECHECK_ATTR", "REJECTED_ATTR", "Budgets", "Verdict", "precheck", "record_precheck"]
