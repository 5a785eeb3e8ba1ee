"""The study loop: ask a candidate, run it, record everything, never lose or redo a finished trial.

One trial = one call of the candidate runner (``edgetune.pipeline.run_candidate`` by default;
any callable with its signature, e.g. :class:`~edgetune.search.SimulatedRunner`, can be passed).
Everything the runner returns is stored in the trial's user attributes, with the artifact path
(``trials/<number>/model.onnx``) and its sha256. Budgets become Optuna constraints through
``trial.set_constraint`` (≤ 0 is feasible). A runner failure (any EdgetuneError, or running out
of memory) ends that trial as FAIL with ``fail_reason`` and the study goes on.

Resume: running again continues the same study. Finished trials (complete, pruned or failed
for a reason) count toward ``n_trials``. A trial left RUNNING by a dead process (same host, pid
gone; or a stale heartbeat in an RDB storage) and one stopped by Ctrl-C is marked FAIL with
``interrupted`` and its parameters are enqueued once again (``retry_of``), so no configuration
is lost and none is run twice to completion.

Extension slots for multi-fidelity search (issue 5): ``scheduler`` receives each epoch's
metrics through the runner's ``on_epoch`` and may stop a trial; ``prefilter`` may reject a
candidate before training (e.g. latency-first rejection with an untrained model).
"""

from __future__ import annotations

import math
import shutil
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from edgetune._attrs import (
    ATTR_ARTIFACT,
    ATTR_BASELINE,
    ATTR_CLAIMED,
    ATTR_DUPLICATE,
    ATTR_FAIL,
    ATTR_FAIL_TYPE,
    ATTR_INFRA,
    ATTR_INTERRUPTED,
    ATTR_RETRY_OF,
    ATTR_SHA,
    ATTR_WORKER,
    RUNNER_ATTR,
)
from edgetune._io import json_safe, sha256_file
from edgetune.errors import ArtifactError, ConfigError, EdgetuneError, StudyError
from edgetune.knobs import Knobs
from edgetune.schedulers._base import TrialScheduler
from edgetune.search._config import StudyConfig, check_config_inputs
from edgetune.search._fidelity import (
    REJECTED_ATTR,
    STOPPED_AT_RUNG_ATTR,
    Measurer,
    build_scheduler,
    default_measurer,
    epoch_hook,
    measure_before_training,
    stopped_in_chain,
)
from edgetune.search._metrics import METRICS, metric_values
from edgetune.search._progress import StudyProgress
from edgetune.search._samplers import get_sampler, make_sampler
from edgetune.search._storage import StudyPaths, open_study
from edgetune.search._trials import (
    Heartbeat,
    _state,
    front_numbers,
    infrastructure_error,
    infrastructure_hint,
    is_failed,
    is_finished,
    is_interrupted,
    recover_interrupted,
    running_twin,
    wait_for_twin,
    worker_info,
)

if TYPE_CHECKING:  # pragma: no cover
    import optuna

Runner = Callable[..., dict]


Prefilter = Callable[[Knobs], "str | None"]  # a reason to reject before training, or None
Reporter = Callable[..., Any]  # report(study_dir, study=, config=), e.g. edgetune.report.build_report


@dataclass
class StudySummary:
    """What a ``run_study`` call did and where the study stands."""

    study_name: str
    study_dir: Path
    n_trials: int
    finished: int
    complete: int
    failed: int
    interrupted: int
    front: list[int]
    new_trials: list[int] = field(default_factory=list)
    running_elsewhere: int = 0
    first_failure: str = ""  # the fail_reason of the earliest failed trial, for the summary line

    @property
    def all_failed(self) -> bool:
        """Every finished trial failed (none complete or pruned): the CLI exits non-zero."""
        return self.failed > 0 and self.failed == self.finished


#: attributes that describe one run of a trial, not its candidate (never copied to a duplicate)
_RUN_ATTRS = {ATTR_WORKER, ATTR_RETRY_OF, ATTR_BASELINE, ATTR_DUPLICATE, ATTR_INTERRUPTED, ATTR_CLAIMED,
             "trial_seconds"}




def runner_kind(runner: Runner) -> str:
    """The runner's ``runner_kind`` attribute: ``simulated`` (:class:`SimulatedRunner`, synthetic
    results), ``table`` (:class:`TableRunner`, a frozen table replayed); ``pipeline`` without one."""
    return str(getattr(runner, "runner_kind", "pipeline"))


def check_runner_kind(study: "optuna.Study", runner: Runner) -> None:
    """Refuse to mix synthetic (simulated) and measured trials in one study."""
    kind = runner_kind(runner)
    saved = study.user_attrs.get(RUNNER_ATTR)
    if saved is None:
        study.set_user_attr(RUNNER_ATTR, kind)
    elif saved != kind:
        raise StudyError(
            f"study {study.study_name!r} holds {saved} results and this run would add {kind} ones; "
            f"mixing them makes the front meaningless. Fix: use a new --study-dir"
            + (" (or drop --simulate)" if saved == "pipeline" else " (or add --simulate)")
        )


def default_runner() -> Runner:
    """``edgetune.pipeline.run_candidate``, or a StudyError saying the pipeline is missing."""
    try:
        from edgetune.pipeline import run_candidate
    except ImportError as exc:
        raise StudyError(
            f"the candidate pipeline (edgetune.pipeline.run_candidate) cannot be imported: {exc}. "
            "Fix: install edgetune completely (bash .ci/setup)"
        ) from exc
    return run_candidate


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def _num(v: float) -> str:
    """Compact: 0.3502, 206.7, 30.2k, 4.1M."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    return f"{v:.4g}"


def _short(knobs: Knobs) -> str:
    return f"bits={knobs.bits} sp={knobs.sparsity:.2f} dm={knobs.depth_multiplier:.2f} chunk={knobs.chunk_ms}"


# ---- one trial -----------------------------------------------------------------------


@dataclass
class _Context:
    config: StudyConfig
    paths: StudyPaths
    runner: Runner
    progress: StudyProgress
    show_runner_progress: bool
    scheduler: TrialScheduler | None
    prefilter: Prefilter | None
    measurer: Measurer | None = None
    derived: dict[str, Any] = field(default_factory=dict)   # base, init, distill: see search._base
    bugs_in_a_row: int = 0   # unexpected exceptions in consecutive trials of this worker


# An unexpected exception (a bug, not a bad candidate) fails its trial with the traceback; the
# worker stops only when this many trials in a row end that way (then the bug is not in a corner
# of the space but everywhere, and every next trial would hit it too).
MAX_BUGS_IN_A_ROW = 3


def _fail(study: "optuna.Study", trial: "optuna.trial.Trial", exc: BaseException, *, tb: bool = False) -> str:
    from optuna.trial import TrialState

    reason = f"{type(exc).__name__}: {exc}"[:4000]
    trial.set_user_attr(ATTR_FAIL, reason)
    trial.set_user_attr(ATTR_FAIL_TYPE, type(exc).__name__)
    if tb:
        trial.set_user_attr("fail_traceback", traceback.format_exc()[-6000:])
    study.tell(trial, state=TrialState.FAIL)
    return reason


def run_trial(study: "optuna.Study", trial: "optuna.trial.Trial", ctx: _Context) -> str:
    """Run one trial to COMPLETE, FAIL or PRUNED (rejected/stopped early); return a one-line summary."""
    from optuna.trial import TrialState

    cfg = ctx.config
    trial.set_user_attr(ATTR_WORKER, worker_info())
    try:
        knobs = cfg.space.suggest(trial)
    except ConfigError as exc:
        return f"#{trial.number} FAIL {_fail(study, trial, exc)}"
    trial.set_user_attr("knobs", knobs.to_dict())
    original = find_duplicate(study, knobs)
    if original is None:
        # another worker is training these very knobs right now: wait for its result, train nothing
        twin = running_twin(study, trial.number, knobs.to_dict())
        if twin is not None:
            ctx.progress.log(f"#{trial.number} {_short(knobs)}: same knobs as #{twin.number}, which another "
                             "worker is training; waiting for its result")
            try:
                wait_for_twin(study, twin, sleep=getattr(ctx.runner, "sleep", time.sleep))  # a replay's clock
            except KeyboardInterrupt:  # like an interrupted training: FAIL, queued again on resume
                trial.set_user_attr(ATTR_INTERRUPTED, True)
                study.tell(trial, state=TrialState.FAIL)
                raise
            original = find_duplicate(study, knobs)
    if original is not None:
        return _reuse(study, trial, original, knobs, ctx)
    trial.set_user_attr(ATTR_CLAIMED, True)
    ctx.progress.started(trial.number, _short(knobs))
    out_dir = ctx.paths.trial_dir(trial.number)
    if out_dir.exists():  # leftovers of an earlier attempt under this number
        shutil.rmtree(out_dir)
    t0 = time.monotonic()
    try:
        if ctx.prefilter is not None:
            why = ctx.prefilter(knobs)
            if why:
                trial.set_user_attr(REJECTED_ATTR, why)
                study.tell(trial, state=TrialState.PRUNED)
                return f"#{trial.number} rejected {_short(knobs)}: {why}"
        if ctx.measurer is not None:
            why = measure_before_training(trial, knobs, cfg, ctx.paths.trial_dir(trial.number) / "untrained",
                                          ctx.measurer, ctx.derived)
            if why:
                study.tell(trial, state=TrialState.PRUNED)
                return f"#{trial.number} rejected before training {_short(knobs)}: {why}"
        result = ctx.runner(
            knobs,
            out_dir,
            dataset=cfg.dataset,
            train=cfg.train,
            target=cfg.primary_target,
            bench_threads=cfg.bench.threads,
            bench_runs=cfg.bench.runs,
            bench_warmup=cfg.bench.warmup,
            family=cfg.family,
            progress=ctx.show_runner_progress,
            on_epoch=epoch_hook(study, trial, ctx.scheduler),
            **ctx.derived,
        )
    except KeyboardInterrupt:
        trial.set_user_attr(ATTR_INTERRUPTED, True)
        study.tell(trial, state=TrialState.FAIL)
        raise
    except Exception as exc:
        stopped = stopped_in_chain(exc)
        if stopped is not None:
            return _pruned(study, trial, knobs, f"epoch {stopped.epoch}")
        if infrastructure_error(exc) is not None:
            raise  # the machine failed, not the candidate: run_study keeps the trial for retry
        if isinstance(exc, EdgetuneError) or _is_oom(exc):
            ctx.bugs_in_a_row = 0
            return f"#{trial.number} FAIL {_short(knobs)}: {_fail(study, trial, exc)}"
        reason = _fail(study, trial, exc, tb=True)  # a bug, not a bad candidate: recorded with its traceback
        ctx.bugs_in_a_row += 1
        if ctx.bugs_in_a_row >= MAX_BUGS_IN_A_ROW:
            raise
        return (f"#{trial.number} FAIL {_short(knobs)}: unexpected {reason} (a bug: its traceback is the "
                f"trial's fail_traceback; the worker stops after {MAX_BUGS_IN_A_ROW} in a row)")
    ctx.bugs_in_a_row = 0
    seconds = time.monotonic() - t0
    if isinstance(result, dict) and result.get("stopped_early") and STOPPED_AT_RUNG_ATTR in trial.user_attrs:
        for key, value in json_safe(result, non_finite="keep").items():  # partial-fidelity numbers, kept for the record
            trial.set_user_attr(key, value)
        return _pruned(study, trial, knobs, f"epoch {result.get('epochs_run')}")
    try:
        values, feasible = _record(trial, result, ctx, out_dir)
    except EdgetuneError as exc:
        return f"#{trial.number} FAIL {_short(knobs)}: {_fail(study, trial, exc)}"
    trial.set_user_attr("trial_seconds", seconds)
    study.tell(trial, values)
    shown = ", ".join(f"{n} {_num(v)}" for n, v in zip(cfg.objectives, values))
    return f"#{trial.number} ok   {_short(knobs)} -> {shown}{'' if feasible else ' (over budget)'} [{seconds:.0f}s]"


def _retry_later(study: "optuna.Study", trial: "optuna.trial.Trial", exc: BaseException,
                 log: Callable[[str], None]) -> None:
    """An infrastructure failure (disk full, I/O error, lost database): not the candidate's fault.

    The trial is marked interrupted (so it does not count and resume queues its knobs again) and
    the study stops with a StudyError saying what to fix: every next trial would fail the same way.
    """
    from optuna.trial import TrialState

    infra = infrastructure_error(exc) or exc
    reason = f"{type(infra).__name__}: {infra}"[:2000]
    try:
        trial.set_user_attr(ATTR_INTERRUPTED, True)
        trial.set_user_attr(ATTR_INFRA, reason)
        study.tell(trial, state=TrialState.FAIL)
    except Exception:  # the storage itself failed: the trial stays RUNNING and recovery retries it
        pass
    log(f"#{trial.number} stopped by an infrastructure error ({reason}); kept for retry")
    raise StudyError(
        f"trial #{trial.number} was stopped by the machine, not the candidate: {reason}. The trial does not "
        f"count as failed and is retried when the study resumes. Fix: {infrastructure_hint(infra)}, then run "
        f"the same command again"
    ) from exc


def _pruned(study: "optuna.Study", trial: "optuna.trial.Trial", knobs: Knobs, when: str) -> str:
    from optuna.trial import TrialState

    study.tell(trial, state=TrialState.PRUNED)
    return f"#{trial.number} stopped {_short(knobs)} by the scheduler after {when} (PRUNED)"


def find_duplicate(study: "optuna.Study", knobs: Knobs) -> "optuna.trial.FrozenTrial | None":
    """An original trial that already settled exactly these knobs: COMPLETE, or rejected by budget
    before training (a MO-ASHA stop depends on its peers at the time, so it is not reused)."""
    from optuna.trial import TrialState

    want = knobs.to_dict()
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if t.user_attrs.get("knobs") != want or ATTR_DUPLICATE in t.user_attrs:
            continue
        if t.state == TrialState.COMPLETE or REJECTED_ATTR in t.user_attrs:
            return t
    return None


def _reuse(study: "optuna.Study", trial: "optuna.trial.Trial", original: Any, knobs: Knobs, ctx: _Context) -> str:
    """Finish ``trial`` with the result of an identical finished one instead of training again.

    Samplers (NSGA-II on a discrete space especially) propose the same candidate more than once;
    a trial is never redone: the duplicate records the original's result and artifact.
    """
    for key, value in original.user_attrs.items():
        if key not in _RUN_ATTRS:
            trial.set_user_attr(key, value)
    trial.set_user_attr(ATTR_DUPLICATE, original.number)
    for name, value in original.constraints.items():
        trial.set_constraint(name, value)
    if original.state.name == "PRUNED":
        from optuna.trial import TrialState

        study.tell(trial, state=TrialState.PRUNED)
        return f"#{trial.number} same {_short(knobs)} as #{original.number}: rejected before training (reused)"
    study.tell(trial, list(original.values))
    shown = ", ".join(f"{n} {_num(v)}" for n, v in zip(ctx.config.objectives, original.values))
    return f"#{trial.number} same {_short(knobs)} as #{original.number} -> {shown} (result reused)"


def _record(trial: "optuna.trial.Trial", result: dict, ctx: _Context, out_dir: Path) -> tuple[list[float], bool]:
    """Store the result in user attrs, check the artifact, set constraints.

    Returns the objective values and whether every budget is met.
    """
    cfg = ctx.config
    if not isinstance(result, dict):
        raise StudyError(f"the candidate runner returned {type(result).__name__}, not a result dict")
    result = json_safe(result, non_finite="keep")  # a NaN objective is reported below, by name
    values = []
    for name in cfg.objectives:
        try:
            v = METRICS[name].value(result)
        except ConfigError as exc:
            raise StudyError(f"objective {name}: {exc}") from None
        if not math.isfinite(v):
            raise StudyError(f"objective {name} is {v} (not finite) for this candidate")
        values.append(v)
    artifact = out_dir / "model.onnx"
    if not artifact.is_file():
        raise ArtifactError(f"the runner finished but wrote no artifact at {artifact}")
    sha = sha256_file(artifact)
    claimed = result.get("sha256")
    if claimed and claimed != sha:
        raise ArtifactError(f"{artifact}: sha256 on disk {sha} differs from the runner's {claimed}")
    for key, value in result.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr(ATTR_ARTIFACT, str(artifact.relative_to(ctx.paths.root)))
    trial.set_user_attr(ATTR_SHA, sha)
    measured = metric_values(result)
    feasible = True
    for b in cfg.budgets:
        if b.metric not in measured:
            raise StudyError(f"budget {b}: the result has no {b.metric}")
        trial.set_constraint(b.name, b.violation(measured[b.metric]))
        feasible &= b.satisfied(measured[b.metric])
    return values, feasible


# ---- the loop ------------------------------------------------------------------------


def run_study(
    config: StudyConfig,
    study_dir: str | Path,
    *,
    runner: Runner | None = None,
    progress: bool = True,
    max_new_trials: int | None = None,
    scheduler: TrialScheduler | None = None,
    prefilter: Prefilter | None = None,
    measurer: Measurer | None = None,
    report: Reporter | None = None,
) -> StudySummary:
    """Run (or resume) the study described by ``config`` in ``study_dir``.

    ``runner`` defaults to ``edgetune.pipeline.run_candidate``; ``measurer`` (untrained
    latency/size, used when ``precheck`` or a scheduler is on) to the runner's own
    ``measure_untrained`` if it has one, else ``edgetune.pipeline.measure_untrained``.
    ``scheduler`` defaults to the config's (``scheduler: {name: moasha}``). ``max_new_trials``
    stops this call early (the study can be resumed). ``report`` is called as
    ``report(study_dir, study=..., config=...)`` at the end: ``report=edgetune.report.build_report``
    writes ``<study_dir>/report/`` (the search layer never imports the report layer itself).
    """
    import optuna

    if report is not None and not callable(report):
        raise ConfigError(f"report must be a function such as edgetune.report.build_report, but got {report!r}; "
                          "fix: run_study(..., report=build_report)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    check_config_inputs(config)  # family, dataset, reachable budgets: before the study dir is touched
    paths = StudyPaths(Path(study_dir))
    runner = runner or default_runner()
    scheduler = scheduler if scheduler is not None else build_scheduler(config)
    if config.precheck or scheduler is not None:
        measurer = measurer or getattr(runner, "measure_untrained", None) or default_measurer()
    else:
        measurer = None
    if runner_kind(runner) == "pipeline":
        _check_dataset_files(config)  # every bad file listed before the first trial trains
    study = open_study(config, paths)
    check_runner_kind(study, runner)
    derived: dict[str, Any] = {}
    if config.base is not None:
        from edgetune.search._base import prepare_base, runner_kwargs

        # a runner that does not build models (the simulator, a table replay) says needs_base = False
        base_dir = prepare_base(config, paths.root, progress=progress) if getattr(runner, "needs_base", True) else None
        derived = runner_kwargs(config, base_dir or Path(config.base.path or paths.root / "base"))
    trials = study.get_trials(deepcopy=False)
    done = sum(is_finished(t) for t in trials)
    failed = sum(map(is_failed, trials))
    front = len(front_numbers(study)) if progress and done else 0
    with StudyProgress(total=config.n_trials, done=done, enabled=progress, title=config.study_name,
                       failed=failed, front=front) as bar:
        bar.log(f"study {config.study_name!r} in {paths.root}: {done}/{config.n_trials} trials finished")
        recover_interrupted(study, bar.log)
        sampler = get_sampler(config.sampler.name)  # a grid (enqueue=False) contains the baseline already
        if config.sampler.enqueue_baseline and not trials and sampler.enqueue:
            study.enqueue_trial(config.space.baseline_params(), user_attrs={ATTR_BASELINE: True})
        if not trials and sampler.enqueue:
            baseline = config.space.baseline_params()
            for params in config.sampler.enqueue:  # fixed knobs the user asked for first
                study.enqueue_trial({**baseline, **params})
        study.sampler = make_sampler(config, len(study.get_trials(deepcopy=False)))
        ctx = _Context(config, paths, runner, bar, progress, scheduler, prefilter, measurer, derived)
        new: list[int] = []
        while max_new_trials is None or len(new) < max_new_trials:
            if new:  # a worker that died meanwhile (killed helper, OOM kill): its trial is queued again now
                recover_interrupted(study, bar.log, startup=False)
            _sweep_interrupted(study, paths)
            trials = study.get_trials(deepcopy=False)
            finished = sum(is_finished(t) for t in trials)
            running = sum(_state(t) == "RUNNING" for t in trials)
            waiting = sum(_state(t) == "WAITING" for t in trials)  # queued retries run even past n_trials
            if finished + running >= config.n_trials and not waiting:
                break
            if sampler.exhausted is not None and sampler.exhausted(study, config):
                bar.log(f"the {sampler.name} sampler has nothing new to propose after {finished} trials (a grid: "
                        "every point is evaluated); the study is complete")
                break
            with warnings.catch_warnings():  # "heartbeat is supposed to be used with optimize": we beat below
                warnings.simplefilter("ignore", UserWarning)
                trial = study.ask()
            new.append(trial.number)
            with Heartbeat(study, trial):
                try:
                    line = run_trial(study, trial, ctx)
                except Exception as exc:
                    if infrastructure_error(exc) is None:
                        raise
                    _retry_later(study, trial, exc, bar.log)
            trials = study.get_trials(deepcopy=False)
            bar.finished(
                line,
                done=sum(is_finished(t) for t in trials),
                total=config.n_trials,
                failed=sum(map(is_failed, trials)),
                front=len(front_numbers(study)),
            )
    summary = summarize(study, config, paths, new)
    if report is not None:
        report(paths.root, study=study, config=config)
    return summary


def _sweep_interrupted(study: "optuna.Study", paths: StudyPaths) -> None:
    """Remove the folders of interrupted trials: their retry runs under a new number, so what a
    killed run left in ``trials/<n>/`` (often nothing) is never used."""
    for t in study.get_trials(deepcopy=False):
        if is_interrupted(t):
            folder = paths.trial_dir(t.number)
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)


def _check_dataset_files(config: StudyConfig) -> None:
    """Decode and check every file of a dataset folder (the built-in presets are checked when built)."""
    from edgetune.data import PRESETS, load_validated_dataset

    if config.dataset not in PRESETS:
        load_validated_dataset(config.dataset, progress=False)  # seed 0, as the pipeline loads it


def summarize(study: "optuna.Study", config: StudyConfig, paths: StudyPaths, new: list[int]) -> StudySummary:
    trials = study.get_trials(deepcopy=False)
    return StudySummary(
        study_name=config.study_name,
        study_dir=paths.root,
        n_trials=config.n_trials,
        finished=sum(is_finished(t) for t in trials),
        complete=sum(_state(t) == "COMPLETE" for t in trials),
        failed=sum(map(is_failed, trials)),
        interrupted=sum(is_interrupted(t) for t in trials),
        front=front_numbers(study),
        new_trials=new,
        running_elsewhere=sum(_state(t) == "RUNNING" for t in trials),
        first_failure=next((str(t.user_attrs.get(ATTR_FAIL, "")) for t in trials if is_failed(t)), ""),
    )


__all__ = [
    "Runner",
    "StudySummary",
    "TrialScheduler",
    "default_runner",
    "front_numbers",
    "is_finished",
    "is_interrupted",
    "make_sampler",
    "recover_interrupted",
    "run_study",
    "run_trial",
    "summarize",
]
