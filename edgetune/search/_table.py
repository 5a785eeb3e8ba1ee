"""Replay a frozen table of measured candidates through the real study loop, on a GPU-seconds clock.

Every configuration of a table was trained and measured once on a GPU machine (per row: the
knobs, the dev WER after each epoch, test WER of the exported file, latency, size, GPU-seconds;
schema in ``benchmarks/tables/README.md``). :class:`TableRunner` is a candidate runner with
``run_candidate``'s signature that answers from the table instead of training, and charges
what the table says each step cost to a simulated clock, as syne-tune's simulator backend does.
Everything else is the product: :func:`~edgetune.search.run_study` with its sampler,
latency-first precheck (:meth:`TableRunner.measure_untrained` reads latency and size from the
table), MO-ASHA through ``on_epoch`` (the runner reports the table's dev WER after each epoch and
stops when told, so a stopped trial costs only the epochs it ran), duplicate handling, twin
waiting, interruption and resume.

Costs charged to the clock (one ``measure_seconds`` per trial, as the table defines it):

* untrained measurement (precheck or MO-ASHA on): ``measure_seconds``;
* each epoch trained: ``epoch_gpu_seconds`` (in total at most ``train_gpu_seconds``);
* export and measurement of the trained file: ``measure_seconds``, unless this trial already
  paid it for its untrained measurement;
* a duplicate (result reused by ``run_study``): nothing.

A row whose exported file failed the export parity gate when the table was measured
(``parity_passed`` false; the key is optional, absent means passed) fails its trial as the product
does: the runner trains it (every epoch charged and reported to ``on_epoch``, so MO-ASHA may stop
it first), pays the export and measurement, then raises :class:`~edgetune.errors.ParityError`, and
``run_study`` ends the trial FAIL with that reason (``fail_type: ParityError``), as it does when
``run_candidate``'s parity gate raises.

**K workers** (:meth:`TableRunner.replay` with ``workers=K``): K threads, each one ordinary
``run_study`` call on the same study directory, exactly as K ``edgetune search`` processes share
a study. The clock is a discrete-event simulation: exactly one worker runs at a time, a worker
that spends time waits until the clock reaches its end, and the clock always wakes the worker
whose step ends first (ties: the lower worker index). Results are therefore deterministic and
K trials are in flight on one clock. The clock's time is wall time on K GPUs; a budget of ``G``
GPU-seconds ends the replay at ``G / K`` (K GPUs held for ``t`` seconds cost ``K t``).
When the budget runs out, each worker's trial in flight is interrupted as Ctrl-C would do it
(FAIL, ``interrupted``), so running the replay again with a larger budget **resumes** the study:
the clock continues from ``replay_clock.json`` and the interrupted configurations are queued again.

The files a trial writes (``model.onnx``) are placeholders, not models.
"""

from __future__ import annotations

import heapq
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from edgetune.errors import ConfigError, DataError, ParityError
from edgetune.knobs import Knobs, TrainSettings
from edgetune._io import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    from edgetune.search._config import StudyConfig
    from edgetune.search._study import StudySummary

TABLE_KNOBS = ("bits", "sparsity", "depth_multiplier", "chunk_ms")
ROW_KEYS = ("test_wer", "worst_group_wer", "latency_ms", "size_bytes", "train_gpu_seconds", "epoch_gpu_seconds",
            "measure_seconds", "dev_wer")
OPTIONAL_ROW_KEYS = ("parity_passed",)  # absent: the file passed the export parity gate
CLOCK_FILE = "replay_clock.json"


class BudgetSpent(KeyboardInterrupt):
    """Raised in a worker whose step would end after the replay's budget: the study loop treats it as
    Ctrl-C (the trial is marked interrupted and retried on resume) and the worker stops."""


@dataclass
class SimClock:
    """A discrete-event clock shared by ``workers`` threads; exactly one of them runs at a time."""

    workers: int
    until: float | None = None  # wall-clock end (None: no limit)
    now: float = 0.0
    charges: list[tuple[float, float, int, str]] = field(default_factory=list)  # (start, end, worker, what)
    budget_hit: bool = False

    def __post_init__(self) -> None:
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, int]] = []  # (wake-up time, sequence, worker)
        self._seq = 0
        self._active: int | None = None
        self._local = threading.local()
        self._live = set(range(self.workers))
        for w in range(self.workers):  # all registered before any runs: the start order is fixed
            self._push(self.now, w)

    def _push(self, t: float, worker: int) -> None:
        heapq.heappush(self._heap, (t, self._seq, worker))
        self._seq += 1

    def _dispatch(self) -> None:  # with the lock held, when no worker runs
        if self._heap:
            t, _, w = heapq.heappop(self._heap)
            if self.until is not None and t > self.until + 1e-9:
                self.budget_hit = True
                self.now = max(self.now, self.until)
            else:
                self.now = max(self.now, t)
            self._active = w
            self._cv.notify_all()

    @property
    def worker(self) -> int:
        """The index of the worker calling (set by :meth:`start`)."""
        return self._local.worker

    def start(self, worker: int) -> None:
        """Called first in worker ``worker``'s thread: wait for its first turn."""
        self._local.worker = worker
        with self._cv:
            if self._active is None:
                self._dispatch()
            self._wait(worker)

    def _wait(self, worker: int) -> None:
        while self._active != worker:
            self._cv.wait()
        if self.budget_hit:
            raise BudgetSpent(f"the replay's budget ends at {self.until:.6g} s on the clock")

    def spend(self, seconds: float, what: str = "train") -> None:
        """This worker is busy ``seconds`` (charged); returns when the clock reaches the end of it."""
        self._advance(seconds, what)

    def sleep(self, seconds: float) -> None:
        """This worker waits ``seconds`` idle (not charged), e.g. for a twin trial to finish."""
        self._advance(seconds, None)

    def _advance(self, seconds: float, what: str | None) -> None:
        w = self.worker
        with self._cv:
            if self._active != w:
                raise RuntimeError(f"worker {w} advanced the clock while worker {self._active} runs")
            if self.budget_hit:
                raise BudgetSpent("the replay's budget is spent")
            end = self.now + max(0.0, float(seconds))
            if what is not None and seconds > 0:
                self.charges.append((self.now, end, w, what))
            self._push(end, w)
            self._active = None
            self._dispatch()
            self._wait(w)

    def leave(self) -> None:
        """This worker is done (its ``run_study`` returned or stopped)."""
        with self._cv:
            self._live.discard(self.worker)
            if self._active == self.worker:
                self._active = None
                self._dispatch()

    def spent(self, at: float | None = None) -> dict[str, float]:
        """GPU-seconds charged by clock time ``at`` (default: now), by kind."""
        at = self.now if at is None else at
        out: dict[str, float] = {}
        for start, end, _, what in self.charges:
            if start < at:
                out[what] = out.get(what, 0.0) + min(end, at) - start
        return out


@dataclass
class ReplayRun:
    """What one :meth:`TableRunner.replay` call did."""

    summary: "StudySummary | None"
    end: str  # "budget" (the clock reached it) or "n_trials" (every worker's study loop ended)
    clock_start: float
    clock_end: float
    workers: int
    spent: dict[str, float]


class TableRunner:
    """A candidate runner that replays a frozen table on a :class:`SimClock` (module docstring).

    ``rows`` maps ``(bits, sparsity, depth_multiplier, chunk_ms)`` to a row with the keys of
    :data:`ROW_KEYS` (``dev_wer``: the list of per-epoch dev WERs); ``benchmarks/replay.py``
    reads and validates the CSV.
    """

    needs_base = False  # answers from the table: no base model is loaded or trained
    runner_kind = "table"  # run_study refuses to mix these results with measured or simulated ones

    def __init__(self, rows: Mapping[tuple, Mapping[str, Any]], epochs: int, *, source: str = "table") -> None:
        if not rows:
            raise DataError(f"{source}: the table has no rows")
        for key, row in rows.items():
            missing = [k for k in ROW_KEYS if k not in row]
            if len(key) != len(TABLE_KNOBS) or missing:
                raise DataError(f"{source}: row {key} must be keyed by {TABLE_KNOBS} and hold {ROW_KEYS}; missing {missing}")
            if len(row["dev_wer"]) != epochs:
                raise DataError(f"{source}: row {key} has {len(row['dev_wer'])} dev WERs, but the table has {epochs} epochs")
        self.rows = {tuple(k): dict(r) for k, r in rows.items()}
        self.epochs = int(epochs)
        self.source = source
        self.clock: SimClock | None = None
        self._measured: dict[int, dict] = {}  # worker -> knobs whose untrained measurement this trial paid

    # ---- the runner protocol ----------------------------------------------------------

    def row(self, knobs: Knobs) -> dict[str, Any]:
        d = knobs.to_dict()
        key = tuple(d[k] for k in TABLE_KNOBS)
        defaults = Knobs().to_dict()
        other = {k: v for k, v in d.items() if k not in TABLE_KNOBS and v != defaults[k]}
        if key not in self.rows or other:
            raise DataError(f"{self.source} has no row for {d} (it varies only {', '.join(TABLE_KNOBS)}, the other "
                            "knobs at their defaults). Fix: search only the table's values (TableRunner.check_space)")
        return self.rows[key]

    def _clock(self) -> SimClock:
        if self.clock is None:
            raise ConfigError("a TableRunner runs on its clock: call runner.replay(config, study_dir, ...), "
                              "not run_study directly")
        return self.clock

    def sleep(self, seconds: float) -> None:
        """The study loop's sleep (waiting for a twin trial) on the simulated clock."""
        self._clock().sleep(seconds)

    def measure_untrained(self, knobs: Knobs, out_dir: Path, **_: Any) -> dict[str, Any]:
        """Latency and size of the untrained candidate (they do not depend on the weights)."""
        row = self.row(knobs)
        clock = self._clock()
        clock.spend(row["measure_seconds"], "measure")
        self._measured[clock.worker] = knobs.to_dict()
        return {**self._speed(row), "knobs": knobs.to_dict(), "untrained": True}

    @staticmethod
    def _speed(row: Mapping[str, Any]) -> dict[str, Any]:
        lat = float(row["latency_ms"])  # the table holds p90 compute + algorithmic latency as one number
        return {"latency_ms": {"p50": lat, "p90": lat, "p99": lat, "mean": lat, "std": 0.0},
                "algorithmic_latency_ms": 0.0, "size_bytes": int(row["size_bytes"])}

    def __call__(
        self,
        knobs: Knobs,
        out_dir: Path,
        *,
        train: TrainSettings = TrainSettings(),
        on_epoch: Callable[..., Any] | None = None,
        **_: Any,  # dataset, target, bench_*, family, base, init, distill_*: the table already holds the result
    ) -> dict[str, Any]:
        row = self.row(knobs)
        clock = self._clock()
        prepaid = self._measured.pop(clock.worker, None) == knobs.to_dict()
        if train.epochs != self.epochs:
            raise ConfigError(f"train.epochs is {train.epochs}, but {self.source} was trained for {self.epochs} "
                              f"epochs. Fix: train.epochs: {self.epochs}")
        charged, epochs_run, stopped = 0.0, 0, False
        for epoch in range(1, self.epochs + 1):  # the last epoch brings the total to train_gpu_seconds
            upto = row["train_gpu_seconds"] if epoch == self.epochs else \
                min(epoch * row["epoch_gpu_seconds"], row["train_gpu_seconds"])
            clock.spend(upto - charged, "train")
            seconds, charged, epochs_run = upto - charged, upto, epoch
            if on_epoch is not None and on_epoch(epoch, {"wer": row["dev_wer"][epoch - 1], "seconds": seconds}) is False:
                stopped = True  # a runner may also return early; run_study's hook raises TrialStopped instead
                break
        if not stopped and not prepaid:
            clock.spend(row["measure_seconds"], "measure")
        if not stopped and not row.get("parity_passed", True):
            raise ParityError(
                f"{self.source}: the exported file of {knobs.to_dict()} failed the export parity gate when the table "
                "was measured (parity_passed = 0): ONNX Runtime and PyTorch disagree beyond the declared tolerance "
                f"after {epochs_run} epochs, {charged:.6g} GPU-seconds of training"
            )
        out_dir = Path(out_dir)
        data = f"placeholder, not a model: {self.source} row {knobs.to_dict()}\n".encode()
        atomic_write_bytes(out_dir / "model.onnx", data)
        import hashlib

        result = {
            "knobs": knobs.to_dict(), "wer": row["test_wer"], "worst_group_wer": row["worst_group_wer"],
            **self._speed(row), "epochs_run": epochs_run, "stopped_early": stopped,
            "train_gpu_seconds": charged, "finished_at": clock.now, "table": self.source,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        atomic_write_text(out_dir / "result.json", json.dumps(result, indent=1))
        return result

    # ---- the replay ---------------------------------------------------------------------

    def check_space(self, config: "StudyConfig") -> None:
        """Every value the config's space can propose has a table row."""
        grid = {k: sorted({key[i] for key in self.rows}) for i, k in enumerate(TABLE_KNOBS)}
        for name, spec in config.space.specs.items():
            try:
                values = spec.grid_values()
            except ConfigError:
                raise ConfigError(f"space.{name}: a table replay needs a finite set of values (the table's "
                                  f"{grid.get(name)})") from None
            if name in grid:
                extra = [v for v in values if v not in grid[name]]
                if extra:
                    raise ConfigError(f"space.{name}: {extra} not in {self.source} (its values: {grid[name]})")
            elif values != [Knobs().to_dict()[name]]:
                raise ConfigError(f"space.{name}: {self.source} holds {name} at its default only; fix it there")

    def replay(self, config: "StudyConfig", study_dir: str | Path, *, workers: int = 1,
               gpu_seconds: float | None = None) -> ReplayRun:
        """Run (or resume) ``config`` through ``run_study`` with ``workers`` simulated workers until
        ``gpu_seconds`` more GPU-seconds are spent on the clock, or every worker's loop ends."""
        from edgetune.search._study import run_study

        if workers < 1:
            raise ConfigError(f"workers must be >= 1, but got {workers}")
        self.check_space(config)
        study_dir = Path(study_dir)
        saved = study_dir / CLOCK_FILE
        start = json.loads(saved.read_text())["now"] if saved.is_file() else 0.0
        until = None if gpu_seconds is None else start + gpu_seconds / workers
        clock = SimClock(workers, until=until, now=start)
        self.clock, self._measured = clock, {}
        summaries: list[Any] = [None] * workers
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                clock.start(i)
                summaries[i] = run_study(config, study_dir, runner=self, progress=False)
            except BudgetSpent:
                pass
            except BaseException as exc:  # a bug: reported after every worker stopped
                errors.append(exc)
            finally:
                clock.leave()

        threads = [threading.Thread(target=work, args=(i,), name=f"table-worker-{i}") for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.clock = None
        if errors:
            raise errors[0]
        end = clock.until if clock.budget_hit and clock.until is not None else clock.now
        atomic_write_text(saved, json.dumps({"now": end, "workers": workers}))
        summary = next((s for s in reversed(summaries) if s is not None), None)
        if summary is None:
            from edgetune.search._storage import StudyPaths, open_study
            from edgetune.search._study import summarize

            summary = summarize(open_study(config, StudyPaths(study_dir), create=False), config,
                                StudyPaths(study_dir), [])
        return ReplayRun(summary, "budget" if clock.budget_hit else "n_trials", start, end, workers,
                         clock.spent(end))


__all__ = ["BudgetSpent", "OPTIONAL_ROW_KEYS", "ReplayRun", "SimClock", "TABLE_KNOBS", "TableRunner"]
