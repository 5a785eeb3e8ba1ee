"""Trial bookkeeping shared by the study loop, the report and export: which trials count as
finished, which were interrupted, how a dead worker's trial is recovered, and the front.

A trial counts toward ``n_trials`` when it is COMPLETE, PRUNED (stopped early or rejected
before training), or FAIL for a reason of its own (``fail_reason``). A FAIL without a reason, or
with ``interrupted``, was cut short (SIGKILL, Ctrl-C, a stale heartbeat): its configuration is
enqueued once more (``retry_of``) and it does not count.
"""

from __future__ import annotations

import errno
import os
import socket
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from edgetune._attrs import (  # user attribute keys written by the study loop: one home, edgetune._attrs
    ATTR_BASELINE,
    ATTR_CLAIMED,
    ATTR_DUPLICATE,
    ATTR_FAIL,
    ATTR_INTERRUPTED,
    ATTR_RETRY_OF,
    ATTR_WORKER,
)
from edgetune._storage import fail_stale

if TYPE_CHECKING:  # pragma: no cover
    import optuna

_STALE_WITHOUT_WORKER = timedelta(minutes=10)

#: OSError numbers that say the machine failed (disk full, I/O error, ...), not the candidate
INFRA_ERRNOS = frozenset(getattr(errno, n) for n in (
    "ENOSPC", "EDQUOT", "EIO", "EROFS", "EACCES", "EPERM", "ENOMEM", "EMFILE", "ENFILE", "ESTALE",
    "ENOLINK", "ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH",
    "ENETUNREACH", "ENETDOWN") if hasattr(errno, n))
_INFRA_TEXT = ("no space left on device", "disk quota exceeded", "input/output error", "read-only file system",
               "[errno 28]", "[errno 5]", "server closed the connection", "connection to server",
               "could not connect to server", "lost connection")
_INFRA_TYPES = ("OperationalError", "InterfaceError", "DisconnectionError", "StorageInternalError")


def _state(t: Any) -> str:
    return t.state.name


def is_interrupted(t: Any) -> bool:
    """FAIL without a reason from the runner: killed, Ctrl-C, or failed by a stale heartbeat."""
    return _state(t) == "FAIL" and (bool(t.user_attrs.get(ATTR_INTERRUPTED)) or ATTR_FAIL not in t.user_attrs)


def is_finished(t: Any) -> bool:
    """Counts toward ``n_trials``: complete, pruned, or failed for a reason of its own."""
    return _state(t) in ("COMPLETE", "PRUNED") or is_failed(t)


def worker_info() -> dict[str, Any]:
    import psutil

    return {"host": socket.gethostname(), "pid": os.getpid(), "started": psutil.Process().create_time()}


def _worker_is_dead(w: Any) -> bool | None:
    """True/False for a worker on this host; None when it cannot be told (another host)."""
    import psutil

    if not isinstance(w, dict) or w.get("host") != socket.gethostname():
        return None
    try:
        proc = psutil.Process(int(w["pid"]))
        if abs(proc.create_time() - float(w["started"])) > 1e-3:
            return True  # the pid was reused by another process
        return proc.status() == psutil.STATUS_ZOMBIE  # killed, not yet reaped by its launcher
    except (psutil.NoSuchProcess, KeyError, ValueError, TypeError):
        return True


# Between trials, an interrupted trial that no worker claimed is queued again only after this
# long (the claimer enqueues right after its FAIL; this covers a claimer that died in between).
RETRY_GRACE = timedelta(seconds=60)


def is_failed(t: Any) -> bool:
    """FAIL for a reason of its own (not interrupted)."""
    return _state(t) == "FAIL" and not is_interrupted(t)


def recover_interrupted(study: "optuna.Study", log: Callable[[str], None] = lambda m: None, *,
                        startup: bool = True) -> list[int]:
    """Fail trials left RUNNING by dead workers and re-enqueue every interrupted configuration once.

    Live workers run this before each trial, so several may find the same dead trial at once.
    The FAIL is the claim: only the worker whose ``tell`` succeeded queues that trial's retry
    (the storage refuses a second ``tell`` of a finished trial); for a trial of another host,
    failed because its heartbeat went stale, the claimer is the worker whose FAIL Optuna applied. Between trials
    (``startup=False``) other interrupted trials are queued only once they finished more than
    :data:`RETRY_GRACE` ago, so a worker never races the claimer between its FAIL and its
    enqueue; when a worker starts (``startup=True``) every interrupted trial without a retry is
    queued. Returns the numbers of the trials re-enqueued.
    """
    from optuna.trial import TrialState

    claimed = fail_stale(study)  # a stale heartbeat (another host): the FAIL that won is the claim
    for number in sorted(claimed):
        log(f"trial #{number} stopped sending its heartbeat; marked failed (interrupted)")
    now = datetime.now()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        w = t.user_attrs.get(ATTR_WORKER)
        dead = _worker_is_dead(w)
        if dead is None and w is None and t.datetime_start and now - t.datetime_start > _STALE_WITHOUT_WORKER:
            dead = True
        if dead:
            try:
                study.tell(t.number, state=TrialState.FAIL)
            except (ValueError, RuntimeError):  # another worker failed it first: its retry is theirs
                continue
            claimed.add(t.number)
            log(f"trial #{t.number} was left running by a dead process; marked failed (interrupted)")
        elif dead is None:
            log(f"trial #{t.number} is running on {w.get('host') if isinstance(w, dict) else '?'}; left alone")
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(ATTR_RETRY_OF) for t in trials}
    requeued = []
    for t in trials:
        if not (is_interrupted(t) and t.number not in retried and t.params):
            continue
        settled = t.datetime_complete is not None and now - t.datetime_complete > RETRY_GRACE
        if not (startup or t.number in claimed or settled):
            continue
        attrs = {ATTR_RETRY_OF: t.number}
        if t.user_attrs.get(ATTR_BASELINE):
            attrs[ATTR_BASELINE] = True
        study.enqueue_trial(dict(t.params), user_attrs=attrs)
        requeued.append(t.number)
        log(f"trial #{t.number} was interrupted; its configuration is queued again")
    return requeued


def infrastructure_error(exc: BaseException) -> BaseException | None:
    """The exception in ``exc``'s chain that says the machine failed, not the candidate: an OSError
    with an errno in :data:`INFRA_ERRNOS` (disk full, I/O error, read-only or unwritable folder, out
    of file handles), a lost database connection (SQLAlchemy OperationalError, Optuna
    StorageInternalError), or a message naming one (torch reports ENOSPC as a RuntimeError).
    None for a candidate failure (diverged, parity, bad knobs) or an out-of-memory on the GPU."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in INFRA_ERRNOS:
            return cur
        if type(cur).__name__ in _INFRA_TYPES:
            return cur
        if not isinstance(cur, MemoryError) and any(t in str(cur).lower() for t in _INFRA_TEXT):
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def infrastructure_hint(exc: BaseException) -> str:
    """What to do about an :func:`infrastructure_error` (the fix part of the message)."""
    code = getattr(exc, "errno", None)
    where = getattr(exc, "filename", None)
    on = f" on the disk holding {where}" if where else ""
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)) or "no space" in str(exc).lower():
        return f"free disk space{on} (or use a --study-dir on a larger disk)"
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"make {where or 'the folder'} writable (or use another --study-dir / --out)"
    if code == errno.EIO:
        return f"check the disk{on} (dmesg shows I/O errors)"
    if code in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
        return f"check the path {where or ''} (a folder where a folder is expected, a file where a file is)"
    if code in (errno.ENOMEM, errno.EMFILE, errno.ENFILE):
        return "free memory or file handles (close other jobs)"
    if code is not None and code in INFRA_ERRNOS or type(exc).__name__ in _INFRA_TYPES:
        return "check that the storage server is reachable and the network is up"
    return f"check {where or 'the file system'} and the machine"


def front_numbers(study: "optuna.Study") -> list[int]:
    """Trial numbers on the feasible Pareto front of the study's complete trials.

    A duplicate (same knobs as an earlier trial, result reused) is represented by its original.
    """
    from optuna.trial import TrialState

    from edgetune._pareto import pareto_front

    done = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values and ATTR_DUPLICATE not in t.user_attrs
    ]
    if not done:
        return []
    feasible = [all(v <= 0 for v in t.constraints.values()) for t in done]
    return [done[i].number for i in pareto_front([t.values for t in done], feasible)]



def running_twin(study: "optuna.Study", number: int, knobs: dict) -> Any | None:
    """Another RUNNING trial, of a live worker, that is training exactly ``knobs`` (claimed)."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.number != number and t.user_attrs.get(ATTR_CLAIMED) and t.user_attrs.get("knobs") == knobs \
                and _worker_is_dead(t.user_attrs.get(ATTR_WORKER)) is not True:
            return t
    return None


def wait_for_twin(study: "optuna.Study", twin: Any, *, poll_s: float = 2.0,
                  sleep: Callable[[float], Any] | None = None) -> None:
    """Block until ``twin`` is no longer RUNNING, its worker died, or its heartbeat went stale.
    ``sleep`` (default ``time.sleep``) lets a replay wait on its simulated clock."""
    import time

    sleep = sleep or time.sleep
    while True:
        t = next((x for x in study.get_trials(deepcopy=False) if x.number == twin.number), twin)
        if t.state.name != "RUNNING" or _worker_is_dead(t.user_attrs.get(ATTR_WORKER)) is True:
            return
        fail_stale(study)  # a twin on another host that stopped beating: no retry, this waiter trains its knobs
        sleep(poll_s)


class Heartbeat:
    """While a trial runs, record its heartbeat in a storage that supports one (RDB), so a
    worker that dies on another machine is noticed (``fail_stale_trials``) and its trial retried."""

    def __init__(self, study: "optuna.Study", trial: "optuna.trial.Trial") -> None:
        import threading

        storage = study._storage
        get_interval = getattr(storage, "get_heartbeat_interval", None)  # BaseHeartbeat (RDB, cached RDB)
        self._interval = get_interval() if get_interval else None
        self._beat = getattr(storage, "record_heartbeat", None)
        self._trial_id = trial._trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True) if self._interval and self._beat else None

    def _run(self) -> None:
        while True:
            try:
                self._beat(self._trial_id)
            except Exception:  # a missed beat is retried; the trial itself goes on
                pass
            if self._stop.wait(self._interval):
                return

    def __enter__(self) -> "Heartbeat":
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()


__all__ = [
    "Heartbeat",
    "front_numbers",
    "infrastructure_error",
    "infrastructure_hint",
    "is_finished",
    "is_interrupted",
    "recover_interrupted",
    "worker_info",
]
