"""Several worker processes on one study: ``edgetune search --workers K [--gpus 0,1]``.

Each worker is a plain ``edgetune search`` process on the same study directory and storage
(the journal file takes a lock per write; PostgreSQL serialises itself), exactly what a user
gets by starting the command K times. The launching process creates the study first (so the
baseline is queued once), starts K - 1 quiet workers, runs worker 0 itself with the progress
display, then waits for the others and writes the report.

Placement, per worker ``i``:

* GPUs: ``--gpus 0,1`` gives worker ``i`` the GPU ``gpus[i % len(gpus)]`` through
  ``CUDA_VISIBLE_DEVICES``, so K workers share a GPU when K > len(gpus);
* CPU: the host's cores are split into K disjoint sets; worker ``i`` is pinned to its set and
  runs torch/OpenMP with that many threads. The latency a worker measures is then not
  disturbed by another worker on the same core, but it still shares caches and memory
  bandwidth with busy neighbours; re-measure the chosen model alone (``edgetune bench``)
  for figures to quote.

Each quiet worker logs to ``<study dir>/workers/worker-<i>.log``. :func:`run_workers` is the
whole launch (the CLI only parses its flags and prints the outcome).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from edgetune._storage import ENV_WORKER  # "i/K" in a worker's environment
from edgetune.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from edgetune.search._config import StudyConfig
    from edgetune.search._study import StudySummary


@dataclass(frozen=True)
class Placement:
    """Where worker ``index`` runs."""

    index: int
    cores: tuple[int, ...]
    gpu: str | None

    def env(self, base: dict[str, str], workers: int) -> dict[str, str]:
        env = dict(base)
        env[ENV_WORKER] = f"{self.index}/{workers}"
        env["OMP_NUM_THREADS"] = str(len(self.cores))
        if self.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu
        return env


def parse_gpus(text: str | None) -> list[str]:
    """``"0,1"`` -> ``["0", "1"]``; ``"all"`` -> every visible CUDA device; None/"" -> []."""
    if not text:
        return []
    if text == "all":
        # in a child process: counting devices here would initialise CUDA before CUDA_VISIBLE_DEVICES is set
        probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
                               capture_output=True, text=True)
        n = int(probe.stdout.strip() or 0) if probe.returncode == 0 else 0
        if n == 0:
            raise ConfigError("--gpus all: no CUDA device is visible here. Fix: drop --gpus, or check the driver")
        return [str(i) for i in range(n)]
    gpus = [g.strip() for g in text.split(",")]
    if not all(g.isdigit() for g in gpus) or len(set(gpus)) != len(gpus):
        raise ConfigError(f"--gpus {text!r}: expected distinct GPU indices separated by commas (e.g. 0,1) or 'all'")
    return gpus


def available_cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return list(range(os.cpu_count() or 1))


def plan(workers: int, gpus: list[str], cores: list[int] | None = None) -> list[Placement]:
    """Split ``cores`` into ``workers`` disjoint sets (at least one core each) and assign GPUs."""
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, but got {workers}")
    cores = cores if cores is not None else available_cores()
    if workers > len(cores):
        raise ConfigError(
            f"--workers {workers}: this machine lets edgetune use {len(cores)} CPU core(s), and each worker needs "
            f"its own (latency is measured on it). Fix: --workers {len(cores)} or fewer")
    per = len(cores) // workers
    return [Placement(i, tuple(cores[i * per:(i + 1) * per]), gpus[i % len(gpus)] if gpus else None)
            for i in range(workers)]


def pin_this_process(cores: tuple[int, ...]) -> None:
    """Pin to ``cores`` and size torch's CPU thread pool to match (no-op where unsupported)."""
    try:
        os.sched_setaffinity(0, cores)
    except (AttributeError, OSError):
        pass
    os.environ["OMP_NUM_THREADS"] = str(len(cores))
    import torch

    torch.set_num_threads(len(cores))


def worker_command(config: Path, study_dir: Path, *, storage: str | None = None, n_trials: int | None = None,
                   simulate: float | None = None) -> list[str]:
    """The ``edgetune search`` command line of a quiet helper worker on the same study."""
    cmd = [sys.executable, "-m", "edgetune", "search", "--config", str(Path(config).resolve()),
           "--study-dir", str(Path(study_dir).resolve()), "--quiet", "--no-report"]
    if storage:
        cmd += ["--storage", storage]
    if n_trials is not None:
        cmd += ["--n-trials", str(n_trials)]
    if simulate is not None:
        cmd += ["--simulate", repr(float(simulate))]
    return cmd


def _helper_setup(cores: tuple[int, ...], parent: int) -> None:
    """In a helper, before exec: pin it, and have the kernel send it SIGINT when the launcher dies
    (Linux ``PR_SET_PDEATHSIG``), so it marks its trial interrupted and exits instead of running on
    unsupervised. SIGINT gets its default action back first: a launcher started in the background
    by a script (``edgetune search --workers 4 &``) has SIGINT ignored, and a helper inheriting
    that would ignore both this signal and the launcher's own stop."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # the exec'd Python then installs KeyboardInterrupt
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGINT), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            return
        if os.getppid() != parent:  # the launcher died before prctl took effect
            os.kill(os.getpid(), signal.SIGINT)


class WorkerPool:
    """The K - 1 helper workers of a launcher; stops them (SIGINT, then SIGKILL) on exit."""

    def __init__(self, placements: list[Placement], command: list[str], log_dir: Path) -> None:
        self.placements = placements
        self.command = command
        self.log_dir = log_dir
        self.procs: list[tuple[Placement, subprocess.Popen, Path]] = []

    def start(self) -> "WorkerPool":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cmd = self.command
        n = len(self.placements)
        for p in self.placements[1:]:
            log = self.log_dir / f"worker-{p.index}.log"
            fh = open(log, "ab")
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=p.env(dict(os.environ), n),
                                    preexec_fn=lambda c=p.cores, parent=os.getpid(): _helper_setup(c, parent))
            fh.close()
            self.procs.append((p, proc, log))
        return self

    def wait(self) -> list[tuple[int, int, Path]]:
        """Wait for every helper; returns ``(worker index, exit code, log)`` of those that failed."""
        failed = []
        for p, proc, log in self.procs:
            rc = proc.wait()
            if rc != 0:
                failed.append((p.index, rc, log))
        return failed

    def stop(self, grace_s: float = 30.0) -> None:
        """Ctrl-C to every live helper (each marks its running trial interrupted), then kill."""
        live = [proc for _, proc, _ in self.procs if proc.poll() is None]
        for proc in live:
            proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + grace_s
        for proc in live:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass(frozen=True)
class WorkersRun:
    """What :func:`run_workers` leaves: the study once every worker ended, and the helpers that failed."""

    summary: "StudySummary"
    failed: list[tuple[int, int, Path]]  # (worker index, exit code, log file)


def run_workers(config: "StudyConfig", study_dir: str | os.PathLike, workers: int, *, config_path: str | os.PathLike,
                gpus: str | None = None, storage: str | None = None, n_trials: int | None = None,
                simulate: float | None = None, runner: Any = None, progress: bool = True,
                echo: Callable[[str], None] | None = None) -> WorkersRun:
    """Run ``workers`` processes on one study: worker 0 here (with the progress display when
    ``progress``), K - 1 quiet helpers as ``edgetune search`` processes on ``config_path`` with the
    same overrides (``storage``, ``n_trials``, ``simulate``). ``echo`` receives the placement line
    and, with ``progress``, the wait notice. Ctrl-C (or any error) here stops the helpers."""
    from edgetune.search._study import run_study

    study_dir = Path(study_dir)
    say = echo or (lambda _msg: None)
    placements = plan(workers, parse_gpus(gpus))
    # create the study (and queue the baseline) once, before several processes ask at the same time
    run_study(config, study_dir, runner=runner, progress=False, max_new_trials=0)
    command = worker_command(Path(config_path), study_dir, storage=storage, n_trials=n_trials, simulate=simulate)
    pool = WorkerPool(placements, command, study_dir / "workers").start()
    me = placements[0]
    if me.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = me.gpu
    pin_this_process(me.cores)
    where = ", ".join(f"{p.index}: cores {p.cores[0]}-{p.cores[-1]}" + (f" GPU {p.gpu}" if p.gpu else "")
                      for p in placements)
    say(f"{len(placements)} workers ({where}); helper logs in {study_dir / 'workers'}")
    try:
        run_study(config, study_dir, runner=runner, progress=progress)
    except BaseException:
        pool.stop()
        raise
    if progress:
        say(f"waiting for {len(pool.procs)} helper worker(s) to finish their trials...")
    failed = pool.wait()
    summary = run_study(config, study_dir, runner=runner, progress=False, max_new_trials=0)
    return WorkersRun(summary, failed)


__all__ = ["ENV_WORKER", "Placement", "WorkerPool", "WorkersRun", "available_cores", "parse_gpus", "pin_this_process",
           "plan", "run_workers", "worker_command"]
