"""What the study loop asks of a scheduler: one hook after each epoch (the loop's side of the contract)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import optuna


class TrialScheduler(Protocol):
    """Multi-fidelity hook (issue 5): decides after each epoch whether a trial goes on."""

    def on_epoch(self, study: "optuna.Study", trial: "optuna.trial.Trial", epoch: int, metrics: dict) -> bool:
        """Return False to stop the trial (the runner then raises or returns early)."""
        ...


__all__ = ["TrialScheduler"]
