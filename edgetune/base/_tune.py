"""``edgetune base tune``: a single-objective Optuna study of the base's training recipe.

Every trial trains the base architecture at the **proxy fidelity** (a fixed random
``proxy.data_fraction`` of train, ``proxy.epochs`` epochs) through :func:`edgetune.base.fit_base`
(the trainer ``train_base`` uses), reports the dev metric after each epoch
(``trial.report(value, epoch)``) and stops when Optuna's own pruner says so (``on_epoch`` returns
False). The study lives in ``<study dir>/journal.log`` (or ``--storage URL``) and resumes like
``edgetune search``: finished trials are kept; a trial whose process died (``RUNNING``, its pid
gone on this host) is marked failed (``interrupted``) and its parameters are tried again; so is
a trial of another host (a shared ``--storage``) whose heartbeat went stale, by the worker whose
FAIL of it won.

Afterwards the best configuration is retrained on all data at full epochs once per
``final.seeds`` with :func:`edgetune.base.train_base` (``<study>/final/seed-N/`` are complete base
directories) and reported as mean ± std (sample std, n - 1); parameter importance comes from
:func:`optuna.importance.get_param_importances`; :mod:`edgetune.base._tune_report` writes the report.
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetune._io import atomic_write_text, json_safe
from edgetune._storage import ENV_WORKER, journal_storage, mask_url, url_storage
from edgetune.base._tune_config import (SamplerKind, TuneConfig, load_tune_config, saturated_proxy,
                                        save_tune_config)
from edgetune.errors import StudyError, TrainingError

CONFIG_NAME = "tune.yaml"
JOURNAL = "journal.log"
CONFIG_ATTR = "edgetune_tune_config"


@dataclass
class TuneData:
    """The examples one process trains on (features computed once, from the feature cache)."""

    train: list[Any]
    dev: list[Any]


def load_data(config: TuneConfig, progress: bool = False) -> TuneData:
    """Train (the proxy's fixed random share, seeded by ``config.seed``) and dev examples of the base's dataset."""
    from edgetune.base._model import _examples
    from edgetune.data import load_validated_dataset

    splits = load_validated_dataset(config.base.dataset, progress=progress)
    train = _examples(splits.train, progress)
    keep = max(1, round(config.proxy.data_fraction * len(train)))
    if keep < len(train):
        idx = sorted(random.Random(config.seed).sample(range(len(train)), keep))
        train = [train[i] for i in idx]
    return TuneData(train=train, dev=_examples(splits.dev, progress))


def train_recipe(base_config: Any, data: TuneData, on_epoch: Any = None, checkpoint: Any = None) -> tuple[Any, Any]:
    """Build the base architecture (seeded) and train it by ``base_config``'s recipe; returns (model, result)."""
    import torch

    from edgetune.base._model import fit_base, recipe
    from edgetune.model import build_model

    knobs, _ = recipe(base_config)
    torch.manual_seed(base_config.train.seed)
    model = build_model(base_config.family, knobs, base_config.resolved_model_config())
    result = fit_base(base_config, model, data.train, data.dev, checkpoint=checkpoint, on_epoch=on_epoch,
                      progress=False, echo=False)
    return model, result


# ---------------------------------------------------------------- storage and study


def open_storage(root: Path, url: str | None) -> Any:
    """The journal file in ``root`` by default, else any Optuna storage URL (as ``edgetune search``)."""
    if url is None:
        return journal_storage(root / JOURNAL)
    try:
        return url_storage(url)
    except Exception as exc:
        raise StudyError(f"cannot open tune storage {mask_url(url)}: {type(exc).__name__}: {exc}. Fix: check the "
                         "URL, the database server, and its driver (pip install 'edgetune[postgres]')") from None


def open_tune_study(config: TuneConfig, root: Path, storage: str | None = None) -> Any:
    """Create or load the study; refuse a config that differs from the one it was started with."""
    import optuna

    saved_path = root / CONFIG_NAME
    if saved_path.is_file():
        _refuse(load_tune_config(saved_path), config, str(saved_path))
    else:  # before the journal exists: a directory with a journal always says what study it holds
        root.mkdir(parents=True, exist_ok=True)
        save_tune_config(config, saved_path)
    # each worker of one study draws its own numbers (same seed everywhere would repeat trials)
    seed = config.seed + int(os.environ.get(ENV_WORKER, "0/1").split("/")[0])
    sampler = (optuna.samplers.RandomSampler(seed=seed) if config.sampler == SamplerKind.RANDOM
               else optuna.samplers.TPESampler(seed=seed))
    study = optuna.create_study(study_name=config.study_name, storage=open_storage(root, storage),
                                direction="minimize", sampler=sampler,
                                pruner=config.pruner.build(config.proxy_epochs), load_if_exists=True)
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is not None:
        _refuse(TuneConfig.from_dict(stored), config, "its storage")
    else:
        study.set_user_attr(CONFIG_ATTR, config.to_dict())
        for params in config.enqueue:
            study.enqueue_trial(params, user_attrs={"enqueued": True})
    save_tune_config(config, saved_path)
    return study


def load_tune_study(study_dir: str | Path, storage: str | None = None) -> Any:
    """Open an existing tune study from its directory (read the saved ``tune.yaml``)."""
    import optuna

    root = Path(study_dir)
    if not (root / CONFIG_NAME).is_file():
        raise StudyError(f"{root} is not a tune study directory (no {CONFIG_NAME}); fix: run `edgetune base tune`")
    config = load_tune_config(root / CONFIG_NAME)
    return optuna.load_study(study_name=config.study_name, storage=open_storage(root, storage or config.storage))


def _refuse(saved: TuneConfig, new: TuneConfig, where: str) -> None:
    diffs = saved.diff(new)
    if diffs:
        raise StudyError(f"the tune study in {where} was run with a different config ({'; '.join(diffs[:6])}). "
                         "Resuming would mix incomparable trials. Fix: use a new --study-dir or study_name; "
                         "only n_trials, final, tracking and storage may change")


def recover_interrupted(study: Any, log: Any = print) -> list[int]:
    """Mark trials left RUNNING by a dead process on this host as failed (``interrupted``) and retry their
    parameters; retry too the trials this process failed for a stale heartbeat (here or inside Optuna's
    ``optimize``)."""
    from optuna.trial import TrialState

    from edgetune._storage import fail_stale

    host, gone = socket.gethostname(), []
    for number in sorted(fail_stale(study)):
        t = study.trials[number]
        if t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
        gone.append(t.number)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid, where = t.user_attrs.get("pid"), t.user_attrs.get("host")
        if where != host or pid is None or _alive(int(pid)):
            continue
        try:  # the FAIL is the claim: a worker that lost the race to another one leaves the retry to it
            study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)  # no public API marks another's trial
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except (RuntimeError, ValueError):
            continue
        if t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
        gone.append(t.number)
    if gone:
        log(f"trial(s) {gone} were interrupted (their process died): marked failed, parameters queued again")
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def counted(study: Any) -> int:
    """Trials that use up ``n_trials``: started ones but the interrupted and the retried (running ones of
    other workers count; queued ``WAITING`` ones do not)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}  # a stale heartbeat's FAIL carries no attribute
    return sum(1 for t in trials
               if t.state != TrialState.WAITING and not t.user_attrs.get("interrupted") and t.number not in retried)


# ---------------------------------------------------------------- the objective


def make_objective(config: TuneConfig, data: TuneData, tracker: Any, log: Any = print) -> Any:
    import optuna

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("host", socket.gethostname())
        params = {name: spec.suggest(trial) for name, spec in config.space.items()}
        base = config.recipe(params, epochs=config.proxy_epochs, seed=config.seed)
        history: list[dict[str, float]] = []
        pruned: list[int] = []
        run = tracker.start(f"trial-{trial.number}", {**params, "trial": trial.number})

        def on_epoch(epoch: int, record: dict[str, float]) -> bool:
            value = float(record[config.metric])
            history.append({"epoch": epoch, **{k: float(v) for k, v in record.items()
                                                if isinstance(v, (int, float))}})
            run.log({"dev_wer": record["wer"], "dev_loss": record["dev_loss"], "train_loss": record["train_loss"]},
                    epoch)
            if math.isfinite(value):
                trial.report(value, epoch)
                if trial.should_prune():
                    pruned.append(epoch)
                    return False
            return True

        t0 = time.perf_counter()
        try:
            _, result = train_recipe(base, data, on_epoch=on_epoch)
        except TrainingError as exc:
            trial.set_user_attr("error", str(exc))
            run.end("FAILED")
            raise
        trial.set_user_attr("history", history)
        trial.set_user_attr("epochs_run", result.epochs_run)
        trial.set_user_attr("train_seconds", result.train_seconds)
        trial.set_user_attr("device", result.device)
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        if pruned:
            run.end("KILLED")
            log(f"trial {trial.number} pruned after epoch {pruned[0]} ({config.metric} "
                f"{history[-1][config.metric]:.4f}): {params}")
            raise optuna.TrialPruned(f"pruned after epoch {pruned[0]}")
        value = float(history[-1][config.metric]) if history else float("nan")
        if not math.isfinite(value):
            raise TrainingError(f"trial {trial.number}: dev {config.metric} is {value}; the dataset needs a dev split")
        run.end("FINISHED")
        log(f"trial {trial.number}: {config.metric} {value:.4f} after {result.epochs_run} epochs: {params}")
        return value

    return objective


def optimize(config: TuneConfig, root: Path, *, storage: str | None = None, n_trials: int | None = None,
             time_budget: float | None = None, log: Any = print, progress: bool = False) -> Any:
    """Run trials until the study holds ``n_trials`` (interrupted ones not counted); returns the study.

    ``time_budget`` (seconds, counted once the data is loaded): like Optuna's ``timeout``, checked after
    each trial, so one trial always runs and none starts after it; a rerun resumes or extends the study.
    """
    import optuna

    from edgetune.base._tracking import make_tracker

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_tune_study(config, root, storage)
    recover_interrupted(study, log)
    target = n_trials or config.n_trials
    if counted(study) >= target:
        log(f"study {config.study_name}: {counted(study)} trials already, target {target}")
        return study
    data = load_data(config, progress=progress)
    log(f"proxy: {len(data.train)} train utterances ({config.proxy.data_fraction:g} of train), "
        f"{config.proxy_epochs} epochs; {len(data.dev)} dev utterances")
    objective = make_objective(config, data, make_tracker(config, root), log)
    deadline = None if time_budget is None else time.monotonic() + time_budget
    while counted(study) < target:
        study.optimize(objective, n_trials=1, catch=(TrainingError,))
        recover_interrupted(study, log)  # what Optuna failed for a stale heartbeat runs again
        if deadline is not None and time.monotonic() >= deadline and counted(study) < target:
            log(f"study {config.study_name}: time budget of {time_budget:g} s spent; "
                f"{counted(study)} of {target} trials (run again to continue)")
            break
    return study


# ---------------------------------------------------------------- final retrain, importance


def importance(study: Any) -> tuple[dict[str, float], str | None]:
    """Optuna's parameter importance (fANOVA) over complete trials, or ({}, why not)."""
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}, f"needs 2 complete trials, has {len(complete)}"
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study, seed=0).items()}, None
    except Exception as exc:  # e.g. every complete trial has the same parameters
        return {}, f"{type(exc).__name__}: {exc}"


def mean_std(values: list[float]) -> dict[str, Any]:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return {"mean": statistics.fmean(vals) if vals else None,
            "std": statistics.stdev(vals) if len(vals) > 1 else None, "n": len(vals), "values": values}


def retrain(config: TuneConfig, params: dict[str, Any], out: Path, *, log: Any = print,
            progress: bool = False) -> dict[str, Any]:
    """Train ``params``' recipe on all data at full epochs once per seed with ``train_base``; mean ± std."""
    from edgetune.base._model import train_base

    runs = []
    for seed in config.final.seeds:
        base_config = config.recipe(params, epochs=config.final.epochs or config.base.train.epochs, seed=seed)
        base = train_base(base_config, out / f"seed-{seed}", progress=progress, log=log,
                          command=f"edgetune base tune (final, seed {seed})")
        chunk = str(base_config.export_chunk_ms)
        runs.append({"seed": seed, "dir": str(out / f"seed-{seed}"),
                     "dev_wer": base.card["wer"][chunk]["dev"], "test_wer": base.card["wer"][chunk]["test"],
                     "dev_loss": (base.card["training"].get("history") or [{}])[-1].get("dev_loss"),
                     "train_seconds": base.card["training"]["train_seconds"],
                     "gpu_seconds": base.card["training"].get("gpu_seconds")})
    return {"params": params, "chunk_ms": config.base.export_chunk_ms, "runs": runs,
            "dev_wer": mean_std([r["dev_wer"] for r in runs]), "test_wer": mean_std([r["test_wer"] for r in runs]),
            "dev_loss": mean_std([r["dev_loss"] for r in runs])}


def finish(config: TuneConfig, root: Path, study: Any, *, final: bool = True, log: Any = print,
           progress: bool = False) -> dict[str, Any]:
    """The best trial, importance, the final retrain (``final.json``) and the report; returns the summary."""
    from optuna.trial import TrialState

    from edgetune.base._tune_report import write_report

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise StudyError(f"study {config.study_name} has no complete trial; nothing to retrain or report")
    best = study.best_trial
    imp, note = importance(study)
    summary: dict[str, Any] = {
        "study_name": config.study_name, "metric": config.metric,
        "best": {"number": best.number, "value": best.value, "params": best.params},
        "counts": {s.name.lower(): sum(1 for t in study.get_trials(deepcopy=False) if t.state == s)
                   for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)},
        "importance": imp, "importance_note": note,
        "proxy": {"data_fraction": config.proxy.data_fraction, "epochs": config.proxy_epochs},
    }
    warning = saturated_proxy([t.value for t in complete], config)
    if warning:
        summary["warning"] = warning
        log(f"warning: {warning}")
    if final:
        log(f"final retrain of trial {best.number} ({best.params}) with seeds {list(config.final.seeds)}")
        summary["final"] = retrain(config, best.params, root / "final", log=log, progress=progress)
        if config.final.compare_default:
            defaults = {k: v for k, v in config.recipe({}).train.__dict__.items() if k in config.space}
            if "dropout" in config.space:
                defaults["dropout"] = config.base.resolved_model_config().get("dropout", 0.1)
            summary["default"] = retrain(config, defaults, root / "default", log=log, progress=progress)
    atomic_write_text(root / "summary.json", json.dumps(_safe(summary), indent=2, sort_keys=True))
    write_report(config, study, summary, root / "report")
    from edgetune.base._tracking import make_tracker

    make_tracker(config, root).artifacts(root / "report")
    return summary


def _safe(value: Any) -> Any:
    return json_safe(value, non_finite="keep")


def run_tune(config_path: str | Path, study_dir: str | Path | None = None, *, storage: str | None = None,
             n_trials: int | None = None, final: bool = True, log: Any = print,
             progress: bool = False) -> dict[str, Any]:
    """``edgetune base tune``: optimize (or resume), then retrain the best, importance and report."""
    config = load_tune_config(config_path)
    root = Path(study_dir or Path("runs") / config.study_name)
    study = optimize(config, root, storage=storage or config.storage, n_trials=n_trials, log=log, progress=progress)
    return finish(config, root, study, final=final, log=log, progress=progress)
