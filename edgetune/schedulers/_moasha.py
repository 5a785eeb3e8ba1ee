"""MO-ASHA: asynchronous successive halving for multi-objective studies.

Optuna cannot prune a multi-objective trial (``trial.report`` raises NotImplementedError),
so this scheduler decides from the objective *vectors* trials report at fixed epochs.

The rule, precisely
-------------------
* **Rungs.** With ``min_epochs = r``, reduction factor ``eta`` and ``max_epochs = E``, the
  rungs are the epochs ``r, r*eta, r*eta**2, ...`` that are *strictly below* ``E``
  (:meth:`MOASHA.rungs`). Rung ``k`` is the ``k``-th of them (0-based). A trial that
  reaches epoch ``E`` is finished, never stopped. ``r >= E`` gives no rungs (no stopping).
* **Recording.** When a trial reaches a rung epoch it reports its objective vector there
  (e.g. dev WER after that epoch, and latency, which is known before training). The vector
  is stored on the trial as user attribute ``rung_<k>`` (a list of floats, objectives in
  the order of ``objectives``; all are minimised).
* **Peers.** The peers of that rung are every trial of the study holding ``rung_<k>``,
  whatever its state (running, complete, pruned, failed), plus the trial itself. Let ``n``
  be their number.
* **Decision on arrival** (asynchronous, as in ASHA: a trial is judged once, against the
  results recorded so far, and is never revisited):
  - if ``n < min_peers`` the trial continues (too few results to judge);
  - otherwise the ``n`` vectors are ordered by (1) non-dominated front index, (2) crowding
    distance within that front, larger first (the front's extremes come first), (3) trial
    number, smaller first; the trial continues iff it is among the first
    ``max(1, floor(n / eta))``. Vectors with a NaN/inf entry are ranked last.
* **Stopping.** A stopped trial gets user attributes ``stopped_at_rung = k`` and
  ``stopped_at_epoch``; the caller then ends it as ``TrialState.PRUNED`` (raise
  ``optuna.TrialPruned`` inside ``study.optimize``, or ``study.tell(trial,
  state=TrialState.PRUNED)`` in ask-and-tell).
* **No second chance.** A stopped trial is not resumed; if the sampler proposes its knobs
  again, the study loop trains them again and this rule judges them again against the peers
  recorded by then (``run_study`` reuses only COMPLETE and rejected trials).

Why PRUNED, not COMPLETE-with-a-flag: a stopped trial's values are partial-fidelity (dev
WER after a few epochs). Optuna keeps PRUNED trials out of everything that defines the
result: ``study.best_trials`` and NSGA-II's parent selection use COMPLETE trials only, so a
partial WER can never appear on the front or breed children, with no filter for anyone to
forget. (``study.tell`` refuses values for a PRUNED trial; the partial vectors stay readable
in the ``rung_<k>`` attributes.) Optuna's TPE, unlike NSGA-II, does learn from PRUNED trials:
it counts them among the bad ones.

Where to put the rungs: a rung's WER must say something about the final model. Before
pruning (``TrainSettings.prune_at``) and QAT (the last ``qat_fraction`` of training) a
candidate is still the dense float model, so at such a rung a compressed candidate looks as
accurate as its dense twin and strictly faster, and dense ones are stopped for nothing. Put
``min_epochs`` after the compression schedule, or compress early when using this scheduler;
``benchmarks/replay.py --tune`` measures the trade-off on a frozen table.

Shared state: the decision reads only the study (``study.get_trials(deepcopy=False)``), so
any number of workers on one storage (journal file, PostgreSQL) share one schedule with no
process-local state. The scheduler's settings are written once to the study user attribute
``moasha``; a worker with different settings is refused (:class:`~edgetune.errors.StudyError`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from edgetune._attrs import MOASHA_ATTR, PRECHECK_ATTR, RUNG_ATTR, STOPPED_AT_EPOCH_ATTR, STOPPED_AT_RUNG_ATTR
from edgetune._pareto import rank_order
from edgetune.errors import ConfigError, StudyError

if TYPE_CHECKING:  # optuna is only touched through the objects passed in
    import optuna

STUDY_ATTR = MOASHA_ATTR


def _positive_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, but got {value!r}")
    return value


def n_promoted(n: int, eta: int) -> int:
    """How many of ``n`` results at a rung are promoted: ``max(1, floor(n / eta))``."""
    return max(1, n // eta)


def promoted_mask(values: np.ndarray | Sequence[Sequence[float]], eta: int,
                  ids: Sequence[int] | None = None) -> np.ndarray:
    """Which of ``n`` rung results are in the top ``max(1, floor(n/eta))`` (the rule above).

    The synchronous view of one rung: an arriving trial continues iff its own entry is True
    in the mask over itself and its peers. ``ids`` (default: row index) break exact ties.
    """
    vals = np.asarray(values, dtype=float)
    mask = np.zeros(len(vals), dtype=bool)
    if len(vals):
        mask[rank_order(vals, ids)[: n_promoted(len(vals), eta)]] = True
    return mask


class MOASHA:
    """Multi-objective asynchronous successive halving over training epochs (rule: module docstring).

    Use from a training loop, once per finished epoch::

        sched = MOASHA(min_epochs=1, max_epochs=9, eta=3)
        for epoch in range(1, 10):
            train_one_epoch(); wer = evaluate_dev()
            if sched.should_stop(study, trial, epoch, {"wer": wer, "latency_ms": latency}):
                raise optuna.TrialPruned()
    """

    def __init__(
        self,
        min_epochs: int = 1,
        max_epochs: int = 9,
        eta: int = 3,
        min_peers: int | None = None,
        objectives: Sequence[str] = ("wer", "latency_ms"),
    ) -> None:
        self.min_epochs = _positive_int("min_epochs", min_epochs, 1)
        self.max_epochs = _positive_int("max_epochs", max_epochs, 1)
        if self.min_epochs > self.max_epochs:
            raise ConfigError(
                f"min_epochs <= max_epochs must hold, but got min_epochs={min_epochs}, max_epochs={max_epochs}"
            )
        self.eta = _positive_int("eta", eta, 2)
        self.min_peers = _positive_int("min_peers", self.eta if min_peers is None else min_peers, 1)
        objectives = tuple(objectives)
        if not objectives or not all(isinstance(o, str) and o for o in objectives):
            raise ConfigError(f"objectives must be a non-empty list of names, but got {objectives!r}")
        if len(set(objectives)) != len(objectives):
            raise ConfigError(f"objectives must be distinct, but got {objectives!r}")
        self.objectives = objectives
        self._checked_studies: set[int] = set()

    def rungs(self) -> list[int]:
        """Epochs at which a trial is judged: ``min_epochs * eta**k`` strictly below ``max_epochs``."""
        out, e = [], self.min_epochs
        while e < self.max_epochs:
            out.append(e)
            e *= self.eta
        return out

    def rung_of(self, epoch: int) -> int | None:
        """The rung index ``k`` of ``epoch``, or None when no decision is taken there."""
        r = self.rungs()
        return r.index(epoch) if epoch in r else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_epochs": self.min_epochs,
            "max_epochs": self.max_epochs,
            "eta": self.eta,
            "min_peers": self.min_peers,
            "objectives": list(self.objectives),
        }

    def _vector(self, values: Mapping[str, float] | Sequence[float]) -> list[float]:
        if isinstance(values, Mapping):
            missing = [o for o in self.objectives if o not in values]
            if missing:
                raise ValueError(
                    f"values lacks objective(s) {missing}; this scheduler ranks {list(self.objectives)}"
                )
            vec = [values[o] for o in self.objectives]
        else:
            vec = list(values)
            if len(vec) != len(self.objectives):
                raise ValueError(
                    f"values must have {len(self.objectives)} entries {list(self.objectives)}, but got {vec!r}"
                )
        return [float(v) for v in vec]

    def _check_study(self, study: "optuna.Study") -> None:
        key = id(study)
        if key in self._checked_studies:
            return
        mine = self.to_dict()
        theirs = study.user_attrs.get(STUDY_ATTR)
        if theirs is None:
            study.set_user_attr(STUDY_ATTR, mine)
        elif theirs != mine:
            raise StudyError(
                f"study {study.study_name!r} was scheduled with MO-ASHA settings {theirs}, but this worker "
                f"uses {mine}. Fix: give every worker of one study the same scheduler settings"
            )
        self._checked_studies.add(key)

    def peers(self, study: "optuna.Study", rung: int) -> tuple[list[int], np.ndarray]:
        """Trial numbers and objective vectors recorded at ``rung`` in ``study``."""
        attr = RUNG_ATTR.format(rung)
        numbers, vecs = [], []
        for t in study.get_trials(deepcopy=False):
            v = t.user_attrs.get(attr)
            if v is not None:
                numbers.append(t.number)
                vecs.append([float(x) for x in v])
        return numbers, np.asarray(vecs, dtype=float).reshape(len(vecs), len(self.objectives))

    def should_stop(
        self,
        study: "optuna.Study",
        trial: "optuna.Trial",
        epoch: int,
        values: Mapping[str, float] | Sequence[float],
    ) -> bool:
        """Record ``values`` if ``epoch`` is a rung and say whether the trial must stop now.

        ``values``: the objective vector after ``epoch`` epochs, as a mapping keyed by
        ``objectives`` or a sequence in that order; all minimised. Returns False at epochs
        that are not rungs (nothing recorded). On True, ``stopped_at_rung`` and
        ``stopped_at_epoch`` are set on the trial; end it as PRUNED.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise ValueError(f"epoch must be an integer >= 1 (epochs finished so far), but got {epoch!r}")
        rung = self.rung_of(epoch)
        if rung is None:
            return False
        vec = self._vector(values)
        self._check_study(study)
        trial.set_user_attr(RUNG_ATTR.format(rung), vec)

        numbers, vecs = self.peers(study, rung)
        others = [i for i, n in enumerate(numbers) if n != trial.number]
        numbers = [numbers[i] for i in others] + [trial.number]
        vecs = np.vstack([vecs[others], np.asarray([vec])])
        if len(numbers) < self.min_peers:
            return False
        top = rank_order(vecs, numbers)[: n_promoted(len(numbers), self.eta)]
        if len(numbers) - 1 in top:
            return False
        trial.set_user_attr(STOPPED_AT_RUNG_ATTR, rung)
        trial.set_user_attr(STOPPED_AT_EPOCH_ATTR, epoch)
        return True


    def on_epoch(
        self, study: "optuna.Study", trial: "optuna.Trial", epoch: int, metrics: Mapping[str, float]
    ) -> bool:
        """The study loop's ``TrialScheduler`` hook: True = go on, False = stop (end it PRUNED).

        Objectives missing from ``metrics`` (latency, size: known before training) are read
        from the trial's ``precheck`` user attribute, written by the study loop's untrained
        measurement (``edgetune.search._fidelity.measure_before_training``).
        """
        pre = trial.user_attrs.get(PRECHECK_ATTR) or {}
        values: dict[str, float] = {}
        for name in self.objectives:
            if name in metrics:
                values[name] = metrics[name]
            elif name in pre:
                values[name] = pre[name]
            else:
                raise ValueError(
                    f"objective {name!r} is neither in the epoch metrics {sorted(metrics)} nor in the trial's "
                    f"{PRECHECK_ATTR!r} attribute {sorted(pre)}. Fix: measure the untrained candidate before "
                    "training (run_study does when precheck or a scheduler is on), or report it in the metrics"
                )
        return not self.should_stop(study, trial, epoch, values)


def is_stopped(user_attrs: Mapping[str, Any]) -> bool:
    """True for a trial MO-ASHA stopped early (its values, if any, are partial-fidelity)."""
    return STOPPED_AT_RUNG_ATTR in user_attrs


__all__ = [
    "MOASHA",
    "PRECHECK_ATTR",
    "RUNG_ATTR",
    "STOPPED_AT_EPOCH_ATTR",
    "STOPPED_AT_RUNG_ATTR",
    "STUDY_ATTR",
    "is_stopped",
    "n_promoted",
    "promoted_mask",
]
