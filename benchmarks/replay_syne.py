"""Syne Tune's MOASHA against a frozen table, on the replay's GPU-seconds clock (a baseline of
``benchmarks/replay.py``; needs the ``replay`` extra: ``pip install -e '.[replay]'``).

Syne Tune's own scheduler makes every decision: ``syne_tune.optimizer.schedulers.multiobjective.MOASHA``
proposes each configuration (``suggest``: uniform over the table's grid, as it does for a
``choice`` space), sees each epoch's result (``on_trial_result`` with the table's dev WER and the
row's latency) and says continue or stop at its rungs. This file only plays the part of Syne
Tune's ``Tuner`` with a simulated backend (its ``backend/simulator_backend`` idea): K workers on
one discrete-event clock, a trial's epochs and its measurement charged from the table exactly as
:class:`edgetune.search.TableRunner` charges them:

* the untrained measurement (latency and size, which MOASHA ranks on from epoch 1):
  ``measure_seconds``, once per trial;
* each epoch: ``epoch_gpu_seconds`` (the last one brings the total to ``train_gpu_seconds``);
* a trial still running when the GPU-seconds run out is interrupted and counts for nothing.

What Syne Tune does not do, this does not do either: there is no latency-first rejection and no
constraint (the budgets only decide, afterwards, which finished trials are feasible), and a
configuration proposed again is trained again (the ``Tuner`` does not reuse results). A row with
``parity_passed`` false ends as a failed trial (``on_trial_error``) after its training.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

import numpy as np

EXTRA_HINT = "pip install -e '.[replay]' (the syne-tune package)"


def available() -> bool:
    """True when syne-tune can be imported."""
    try:
        import syne_tune.optimizer.schedulers.multiobjective.moasha  # noqa: F401
    except ImportError:
        return False
    return True


def _key(config: Mapping[str, Any], grid: Mapping[str, Sequence[Any]]) -> tuple:
    """The table key of a suggested configuration (Syne Tune may hand back numpy scalars)."""
    out = []
    for name, values in grid.items():
        match = [v for v in values if v == config[name]]
        if not match:
            raise ValueError(f"syne-tune suggested {name}={config[name]!r}, not one of the table's {list(values)}")
        out.append(match[0])
    return tuple(out)


def run_moasha(
    rows: Mapping[tuple, Mapping[str, Any]],
    epochs: int,
    grid: Mapping[str, Sequence[Any]],
    *,
    feasible: Callable[[Mapping[str, Any]], bool],
    seed: int,
    gpu_seconds: float | None,
    workers: int = 1,
    n_trials: int,
    grace_period: int = 1,
    reduction_factor: float = 3,
) -> tuple[list[dict[str, Any]], str, dict[str, float]]:
    """Run Syne Tune's MOASHA over the table until ``gpu_seconds`` are spent or ``n_trials`` are done.

    Returns the trials in the order they started (``number``, ``key``, ``outcome`` out of full,
    stopped, failed, interrupted; ``epochs``; ``finished_at`` on the clock, whose time is wall time
    on ``workers`` GPUs; ``feasible``; ``values`` = (test WER, latency) of a full one; ``repeat``:
    the configuration was trained before), how the run ended (``budget`` or ``n_trials``) and the
    GPU-seconds charged by kind.
    """
    try:
        from syne_tune.backend.trial_status import Trial
        from syne_tune.config_space import choice
        from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA
    except ImportError as exc:
        raise ImportError(f"the syne-moasha baseline needs syne-tune: {exc}. Fix: {EXTRA_HINT}") from exc

    names = list(grid)
    until = None if gpu_seconds is None else gpu_seconds / workers
    charges: list[tuple[float, float, str]] = []
    trials: list[dict[str, Any]] = []
    inflight: dict[int, dict[str, Any] | None] = {w: None for w in range(workers)}
    heap = [(0.0, w, w) for w in range(workers)]  # (wake-up time, sequence, worker): ties by order
    seq, seen, end = workers, set(), "n_trials"

    def push(t: float, w: int) -> None:
        nonlocal seq
        heapq.heappush(heap, (t, seq, w))
        seq += 1

    rng_state = np.random.get_state()  # MOASHA.suggest samples from numpy's global generator
    np.random.seed(seed)
    try:
        sched = MOASHA(config_space={k: choice(list(v)) for k, v in grid.items()}, metrics=["dev_wer", "latency_ms"],
                       do_minimize=True, time_attr="epoch", max_t=epochs, grace_period=grace_period,
                       reduction_factor=reduction_factor, random_seed=seed)
        while heap:
            now, _, w = heapq.heappop(heap)
            if until is not None and now > until + 1e-9:
                end = "budget"
                break
            cur = inflight[w]
            if cur is None:  # a free worker: ask Syne Tune for the next trial
                if len(trials) >= n_trials:
                    continue
                config = sched.suggest().config
                key = _key(config, grid)
                row = rows[key]
                trial = Trial(trial_id=len(trials), config=config, creation_time=datetime(2000, 1, 1))
                sched.on_trial_add(trial)
                cur = {"trial": trial, "row": row, "epoch": 0, "charged": 0.0,
                       "record": {"number": trial.trial_id, "key": key, "outcome": "interrupted", "epochs": 0,
                                  "finished_at": None, "feasible": feasible(row), "repeat": key in seen}}
                seen.add(key)
                trials.append(cur["record"])
                inflight[w] = cur
                charges.append((now, now + row["measure_seconds"], "measure"))
                push(now + row["measure_seconds"], w)
                continue
            row, rec = cur["row"], cur["record"]
            if cur["epoch"] > 0:  # an epoch just ended: Syne Tune sees its result
                e = cur["epoch"]
                result = {"epoch": e, "dev_wer": row["dev_wer"][e - 1], "latency_ms": row["latency_ms"]}
                decision = sched.on_trial_result(cur["trial"], result)
                rec["epochs"] = e
                if e == epochs or decision == "STOP":
                    if e < epochs:
                        rec["outcome"] = "stopped"
                    elif row.get("parity_passed", True):
                        sched.on_trial_complete(cur["trial"], result)
                        rec["outcome"], rec["values"] = "full", (row["test_wer"], row["latency_ms"])
                    else:
                        sched.on_trial_error(cur["trial"])
                        rec["outcome"] = "failed"
                    rec["finished_at"] = now
                    inflight[w] = None
                    push(now, w)
                    continue
            e = cur["epoch"] + 1  # train the next epoch
            upto = row["train_gpu_seconds"] if e == epochs else min(e * row["epoch_gpu_seconds"], row["train_gpu_seconds"])
            charges.append((now, now + upto - cur["charged"], "train"))
            push(now + upto - cur["charged"], w)
            cur["epoch"], cur["charged"] = e, upto
    finally:
        np.random.set_state(rng_state)
    at = until if end == "budget" else max((c[1] for c in charges), default=0.0)
    spent: dict[str, float] = {}
    for start, stop, what in charges:
        if start < at:
            spent[what] = spent.get(what, 0.0) + min(stop, at) - start
    return trials, end, spent


__all__ = ["EXTRA_HINT", "available", "run_moasha"]
