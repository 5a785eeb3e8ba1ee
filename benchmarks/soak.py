"""Soak: several workers on one study for a few minutes, killed with SIGKILL at random and restarted.

    python benchmarks/soak.py --minutes 3 --workers 4 [--storage postgresql://...]

Each worker is a real ``run_study`` process on one shared study (PostgreSQL when ``--storage`` or
``EDGETUNE_TEST_POSTGRES`` gives a URL, else the default journal file in the study directory).
The candidate runner is :class:`~edgetune.search.SimulatedRunner` with a per-epoch sleep, so a
trial takes about a second: the study loop, the storage, recovery and artifacts are real, the
training is not. Every few seconds a random worker is killed with SIGKILL and a replacement is
started at once (a supervisor's restart). At the end every worker gets SIGINT (Ctrl-C), one
recovery pass runs, and the study is audited:

- finished: trials that count toward ``n_trials`` (complete, pruned, failed for a reason);
- lost (goal 0): a killed trial whose configuration was never queued again, a trial still
  RUNNING after every worker stopped, or a finished trial whose artifact is missing or whose
  sha256 differs from the recorded one;
- stuck running (goal 0, reported apart from lost): a trial left RUNNING with neither a worker
  record nor parameters, i.e. killed between ``study.ask()`` and its first write. No
  configuration or measurement is lost, but the study loop only fails such a trial after 10
  minutes (or by heartbeat), and until then it counts toward ``n_trials`` as running;
- duplicated (goal 0): a configuration trained to completion twice without being marked as a
  reused duplicate (split into sequential re-runs, a real defect, and concurrent ones, where two
  workers drew the same candidate at once);
- restart time: seconds from a replacement worker's start to its first finished trial (median).

Results go to ``benchmarks/results/soak-<host>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import edgetune

REPO = Path(__file__).resolve().parents[1]
#: the folder holding the edgetune this process imported: the workers import the same one
EDGETUNE_HOME = Path(edgetune.__file__).resolve().parents[1]

CONFIG = """
study_name: {name}
n_trials: 1000000
seed: 11
space:
  bits: [4, 8, 16, 32]
  sparsity: {{low: 0.0, high: 0.8, step: 0.1}}
  depth_multiplier: {{low: 0.25, high: 1.0}}
  chunk_ms: [160, 320, 640]
objectives: [wer, latency_ms, size_bytes]
budgets: ["latency_ms <= 500"]
train: {{epochs: 2}}
sampler: {{name: nsga2, population_size: 8}}
"""

WORKER = """
import sys
from edgetune.search import SimulatedRunner, load_config, run_study
try:
    run_study(load_config(sys.argv[1]), sys.argv[2], runner=SimulatedRunner(epoch_delay_s=float(sys.argv[3])),
              progress=False)
except KeyboardInterrupt:
    sys.exit(130)
"""


class Fleet:
    """The worker processes, with the wall time each was started and whether it is a restart."""

    def __init__(self, cfg_file: Path, study_dir: Path, epoch_delay: float) -> None:
        self.args = [str(cfg_file), str(study_dir), str(epoch_delay)]
        self.env = {**os.environ, "PYTHONPATH": str(EDGETUNE_HOME) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.live: list[subprocess.Popen] = []
        self.restarts: list[tuple[int, datetime]] = []  # (pid, start time) of replacement workers
        self.kills = 0
        self.unexpected_exits: list[int] = []  # return codes of workers that ended on their own

    def start(self, restart: bool = False) -> None:
        proc = subprocess.Popen([sys.executable, "-c", WORKER, *self.args], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.live.append(proc)
        if restart:
            self.restarts.append((proc.pid, datetime.now()))

    def kill_one(self, rng: random.Random) -> None:
        proc = rng.choice(self.live)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.live.remove(proc)
        self.kills += 1
        self.start(restart=True)

    def respawn_exited(self) -> None:
        for proc in [p for p in self.live if p.poll() is not None]:
            self.live.remove(proc)
            self.unexpected_exits.append(proc.returncode)
            self.start(restart=True)

    def stop(self) -> None:
        for proc in self.live:
            proc.send_signal(signal.SIGINT)
        for proc in self.live:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def audit(study: Any, study_dir: Path, restarts: list[tuple[int, datetime]]) -> dict[str, Any]:
    from edgetune.search import is_finished, is_interrupted
    from edgetune._io import sha256_file

    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    retried = {t.user_attrs.get("retry_of") for t in trials}
    lost: list[str] = []
    stuck: list[str] = []
    for t in trials:
        if t.state.name == "RUNNING" and not t.params and "worker" not in t.user_attrs:
            stuck.append(f"#{t.number} RUNNING, no worker and no params (killed between ask and its first write)")
        elif t.state.name == "RUNNING":
            lost.append(f"#{t.number} still RUNNING after every worker stopped (worker "
                        f"{t.user_attrs.get('worker')}, params {bool(t.params)})")
        elif is_interrupted(t) and t.params and t.number not in retried:
            lost.append(f"#{t.number} interrupted and never queued again")
        elif t.state.name == "COMPLETE" and "duplicate_of" not in t.user_attrs:
            path = study_dir / t.user_attrs.get("artifact", "missing")
            if not path.is_file():
                lost.append(f"#{t.number} artifact {path} missing")
            elif sha256_file(path) != t.user_attrs.get("sha256"):
                lost.append(f"#{t.number} artifact {path} sha256 differs from the recorded one")
    seen: dict[str, Any] = {}
    sequential, concurrent = [], []
    for t in sorted((t for t in trials if t.state.name == "COMPLETE" and "duplicate_of" not in t.user_attrs),
                    key=lambda t: t.number):
        key = json.dumps(t.user_attrs.get("knobs"), sort_keys=True)
        if key in seen:
            first = seen[key]
            (concurrent if t.datetime_start < first.datetime_complete else sequential).append(
                f"#{t.number} re-trained #{first.number}")
        seen.setdefault(key, t)
    restart_s = []
    for pid, started in restarts:
        done = [t.datetime_complete for t in trials if is_finished(t) and t.datetime_complete
                and t.user_attrs.get("worker", {}).get("pid") == pid]
        if done:
            restart_s.append((min(done) - started).total_seconds())
    return {
        "trials_total": len(trials),
        "trial_numbers_contiguous": numbers == list(range(len(trials))),
        "finished": sum(is_finished(t) for t in trials),
        "complete": sum(t.state.name == "COMPLETE" for t in trials),
        "reused_duplicates": sum("duplicate_of" in t.user_attrs for t in trials),
        "interrupted": sum(is_interrupted(t) for t in trials),
        "queued_for_retry_at_end": sum(t.state.name == "WAITING" for t in trials),
        "lost": len(lost),
        "lost_detail": lost[:50],
        "stuck_running_without_worker": len(stuck),
        "stuck_running_detail": stuck[:50],
        "duplicated": len(sequential) + len(concurrent),
        "duplicated_sequential": sequential[:50],
        "duplicated_concurrent": concurrent[:50],
        "restarts_measured": len(restart_s),
        "restart_seconds_median": statistics.median(restart_s) if restart_s else None,
        "restart_seconds": [round(s, 2) for s in restart_s],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--storage", default=os.environ.get("EDGETUNE_TEST_POSTGRES"),
                    help="Optuna storage URL (default: $EDGETUNE_TEST_POSTGRES, else a journal file)")
    ap.add_argument("--epoch-delay", type=float, default=0.5, help="seconds per simulated epoch (2 epochs)")
    ap.add_argument("--kill-every", type=float, nargs=2, default=(4.0, 12.0), metavar=("MIN", "MAX"),
                    help="seconds between SIGKILLs, drawn uniformly")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / f"soak-{socket.gethostname()}.json")
    args = ap.parse_args(argv)

    import optuna

    from edgetune.search import StudyPaths, config_from_yaml, config_to_yaml, open_study, recover_interrupted
    from edgetune.search import mask_url

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = random.Random(args.seed)
    name = f"soak_{socket.gethostname()}_{int(time.time())}"
    text = CONFIG.format(name=name) + (f"storage: {args.storage}\n" if args.storage else "")
    config = config_from_yaml(text)
    with tempfile.TemporaryDirectory(prefix="edgetune-soak-") as tmp:
        study_dir = Path(tmp) / "study"
        cfg_file = Path(tmp) / "soak.yaml"
        cfg_file.write_text(config_to_yaml(config))
        fleet = Fleet(cfg_file, study_dir, args.epoch_delay)
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        for _ in range(args.workers):
            fleet.start()
        next_kill = t0 + rng.uniform(*args.kill_every)
        while time.monotonic() < end:
            time.sleep(0.2)
            fleet.respawn_exited()
            if time.monotonic() >= next_kill:
                fleet.kill_one(rng)
                next_kill = time.monotonic() + rng.uniform(*args.kill_every)
        fleet.stop()
        wall = time.monotonic() - t0
        study = open_study(config, StudyPaths(study_dir), create=False)
        requeued = recover_interrupted(study)  # what a next start would do: fail dead trials, queue them again
        result = audit(study, study_dir, fleet.restarts)
        if args.storage and args.storage.startswith(("postgresql", "postgres")):
            from edgetune.search import sqlalchemy_url

            optuna.delete_study(study_name=name, storage=sqlalchemy_url(args.storage))
    report = {
        "what": "soak of the multi-worker study loop with random SIGKILLs and restarts",
        "runner": "simulated (edgetune.search.SimulatedRunner): the study loop, storage, recovery and "
                  "artifact files are real; the training and measurement are not",
        "host": socket.gethostname(),
        "date": datetime.now().isoformat(timespec="seconds"),
        "storage": mask_url(args.storage) if args.storage else "journal file",
        "minutes": args.minutes,
        "wall_seconds": round(wall, 1),
        "workers": args.workers,
        "epoch_delay_s": args.epoch_delay,
        "epochs": 2,
        "kill_every_s": list(args.kill_every),
        "sigkills": fleet.kills,
        "restarts": len(fleet.restarts),
        "unexpected_worker_exits": fleet.unexpected_exits,
        "requeued_by_final_recovery": len(requeued),
        **result,
        "finished_per_minute": round(result["finished"] / (wall / 60), 1),
        "goals": {"lost": 0, "stuck_running_without_worker": 0, "duplicated": 0},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp_out, args.out)
    summary = {k: report[k] for k in ("finished", "lost", "stuck_running_without_worker", "duplicated", "sigkills", "restart_seconds_median")}
    print(json.dumps(summary), f"-> {args.out}")
    return 0 if report["lost"] == 0 and not result["duplicated_sequential"] else 1


if __name__ == "__main__":
    sys.exit(main())
