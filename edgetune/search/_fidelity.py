"""Multi-fidelity hooks of the study loop: latency-first rejection and MO-ASHA early stopping.

* **Latency-first rejection** (``precheck: true``): a candidate's latency and size depend on
  its shapes, not its weights, so the loop exports and measures the *untrained* candidate
  (``edgetune.pipeline.measure_untrained``, seconds) and never trains one that already
  breaks a latency/size budget. Such a trial ends PRUNED with ``rejected_by_budget`` and its
  constraint values.
* **MO-ASHA** (``scheduler: {name: moasha}``, :class:`edgetune.schedulers.MOASHA`, or another
  scheduler registered with :func:`edgetune.schedulers.register_scheduler`): after each
  epoch the runner reports dev WER through ``on_epoch``; at rung epochs the trial goes on only
  if it is not dominated by too many peers (latency/size for the ranking come from the
  untrained measurement). A stopped trial ends PRUNED with ``stopped_at_rung``: never COMPLETE,
  so it can never be mistaken for a finished one, reach the front, or breed NSGA-II children.

The hook raises :class:`TrialStopped` out of ``on_epoch`` so no time is spent exporting a
candidate that was stopped; a runner that instead returns ``stopped_early`` is handled too.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from edgetune._attrs import PRECHECK_ATTR, REJECTED_ATTR, STOPPED_AT_RUNG_ATTR
from edgetune.knobs import Knobs
from edgetune.search._config import StudyConfig
from edgetune.search._metrics import metric_values

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from edgetune.schedulers._base import TrialScheduler

Measurer = Callable[..., dict]


class TrialStopped(Exception):
    """Raised from ``on_epoch`` when the scheduler stops a trial (caught by the study loop)."""

    def __init__(self, epoch: int) -> None:
        super().__init__(f"stopped by the scheduler after epoch {epoch}")
        self.epoch = epoch


def stopped_in_chain(exc: BaseException | None) -> TrialStopped | None:
    """The TrialStopped behind ``exc``, even if a runner wrapped it in another error."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, TrialStopped):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def build_scheduler(config: StudyConfig) -> "TrialScheduler | None":
    """The scheduler the config asks for (None: every trial trains for ``train.epochs``)."""
    from edgetune.schedulers._registry import make_scheduler

    s = config.scheduler
    settings = {"min_epochs": s.min_epochs, "eta": s.eta, "min_peers": s.min_peers}
    return make_scheduler(s.name, settings, max_epochs=config.train.epochs, objectives=config.objectives)


def default_measurer() -> Measurer:
    from edgetune.errors import StudyError

    try:
        from edgetune.pipeline import measure_untrained
    except ImportError as exc:
        raise StudyError(f"precheck/MO-ASHA need edgetune.pipeline.measure_untrained: {exc}") from exc
    return measure_untrained


def epoch_hook(
    study: "optuna.Study", trial: "optuna.trial.Trial", scheduler: "TrialScheduler | None"
) -> Callable[..., bool] | None:
    """``on_epoch`` for the runner: asks the scheduler, raises TrialStopped when it says stop."""
    if scheduler is None:
        return None

    def on_epoch(epoch: int, metrics: dict, *_: Any, **__: Any) -> bool:
        if scheduler.on_epoch(study, trial, epoch, metrics) is False:
            raise TrialStopped(epoch)
        return True

    return on_epoch


def measure_before_training(trial: "optuna.trial.Trial", knobs: Knobs, cfg: StudyConfig, where: Path,
                            measurer: Measurer, derived: Mapping[str, Any]) -> str | None:
    """Measure the untrained candidate in ``where`` (removed after); store it as ``precheck``;
    return a rejection reason or None.

    With ``precheck: true`` a candidate over any latency/size budget is rejected, and its
    constraint values are set from the untrained measurement (the trained model has the same
    shapes, so the same speed and size). ``derived``: the base-model arguments of the runner.
    """
    try:
        raw = measurer(
            knobs,
            where,
            family=cfg.family,
            target=cfg.primary_target,
            bench_threads=cfg.bench.threads,
            bench_runs=cfg.bench.runs,
            bench_warmup=cfg.bench.warmup,
            **{k: v for k, v in derived.items() if k in ("base", "init")},
        )
    finally:
        shutil.rmtree(where, ignore_errors=True)  # only the numbers are kept
    measured = {k: v for k, v in metric_values(raw).items() if k not in ("wer", "worst_group_wer")}
    trial.set_user_attr(PRECHECK_ATTR, measured)
    if not cfg.precheck:
        return None
    checked = [b for b in cfg.budgets if b.metric in measured]
    broken = [b for b in checked if not b.satisfied(measured[b.metric])]
    if not broken:
        return None
    for b in checked:
        trial.set_constraint(b.name, b.violation(measured[b.metric]))
    reason = "; ".join(f"{b.metric} {measured[b.metric]:.4g} breaks {b}" for b in broken) + " (untrained candidate)"
    trial.set_user_attr(REJECTED_ATTR, reason)
    return reason


__all__ = [
    "PRECHECK_ATTR",
    "REJECTED_ATTR",
    "STOPPED_AT_RUNG_ATTR",
    "TrialStopped",
    "build_scheduler",
    "default_measurer",
    "epoch_hook",
    "measure_before_training",
    "stopped_in_chain",
]
