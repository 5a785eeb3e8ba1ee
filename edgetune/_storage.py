"""Optuna storage helpers shared by ``edgetune search`` and ``edgetune base tune``, at the bottom of the import chain.

A study lives in an Optuna journal file by default; any Optuna storage URL also works
(``postgresql://...`` for several workers on several machines; RDB storages get a heartbeat so
a dead worker's trial is noticed). Several worker processes share one storage; each learns
its index from :data:`ENV_WORKER`. Imports nothing from edgetune above :mod:`edgetune.errors`
(none at all today): every layer may use it. optuna is imported inside the functions.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import optuna

ENV_WORKER = "EDGETUNE_WORKER"  # "i/K" in a worker's environment
HEARTBEAT_INTERVAL_S = 30
HEARTBEAT_GRACE_S = 120
MASK = "***"

#: (study name, trial number) of the trials this process failed for a stale heartbeat, in order;
#: :func:`fail_stale` hands them to the worker, which queues their retries at once
_STALE_FAILED_HERE: list[tuple[str, int]] = []


def _note_stale_failure(study: "optuna.Study", trial: "optuna.trial.FrozenTrial") -> None:
    """Optuna's heartbeat callback: runs in the one process whose FAIL of the stale trial won."""
    _STALE_FAILED_HERE.append((study.study_name, trial.number))


def fail_stale(study: "optuna.Study") -> set[int]:
    """FAIL the RUNNING trials whose heartbeat went stale (RDB storages with a heartbeat only) and
    return the numbers of those this process failed since the last call, here or inside Optuna's
    ``optimize`` (each is handed out once): it claimed them, so it queues their retries.

    Optuna wraps RDBStorage in _CachedStorage, so ``fail_stale_trials`` tests the capability, not
    the class; it returns at once for storages without a heartbeat.
    """
    import warnings

    import optuna

    with warnings.catch_warnings():  # ExperimentalWarning: the API has been stable since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    name = study.study_name
    mine = {n for s, n in _STALE_FAILED_HERE if s == name}
    _STALE_FAILED_HERE[:] = [(s, n) for s, n in _STALE_FAILED_HERE if s != name]
    return mine


def mask_url(url: str) -> str:
    """Hide a password in a storage URL (printed and saved configs never hold one)."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", rf"\1{MASK}@", url)


def sqlalchemy_url(url: str) -> str:
    """Pick the installed PostgreSQL driver for a bare ``postgresql://`` URL.

    SQLAlchemy 2.1 maps ``postgresql://`` to psycopg 3; edgetune's ``postgres`` extra installs
    psycopg2. An explicit ``postgresql+driver://`` is left alone.
    """
    import importlib.util

    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
                return "postgresql+psycopg2://" + url[len(bare):]
            return "postgresql://" + url[len(bare):]
    return url


def _stale_callback_name() -> str:
    """Optuna 4.9 renamed ``failed_trial_callback`` to ``heartbeat_stale_trial_callback``."""
    import inspect

    import optuna

    params = inspect.signature(optuna.storages.RDBStorage.__init__).parameters
    return "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in params else "failed_trial_callback"


def rdb_storage(url: str, attempts: int = 6) -> "optuna.storages.RDBStorage":
    """An RDB storage with a heartbeat. Workers starting together on a fresh database race to
    create its tables (one gets an IntegrityError); the losers retry after a short pause.

    Optuna calls back the process that fails a stale trial; the callback notes the trial so that
    this worker, its one claimer, queues its retry at once (:func:`fail_stale`)."""
    import random
    import time
    import warnings

    import optuna

    stale_callback = _stale_callback_name()
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeat_interval is "experimental" since optuna 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    sqlalchemy_url(url), heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=HEARTBEAT_GRACE_S,
                    **{stale_callback: _note_stale_failure},
                )
        except Exception as exc:
            if attempt == attempts - 1 or type(exc).__name__ not in ("IntegrityError", "ProgrammingError"):
                raise
            time.sleep(0.2 + random.random() * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def journal_storage(path: Path) -> "optuna.storages.BaseStorage":
    """The journal file ``path`` (its directory created, a half-written last line dropped)."""
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    path.parent.mkdir(parents=True, exist_ok=True)
    repair_journal(path)
    return JournalStorage(JournalFileBackend(str(path)))


def url_storage(url: str) -> "optuna.storages.BaseStorage":
    """A storage URL: ``journal:<path>`` (or ``journal+file:``) or any RDB URL. Raises what the
    driver raises (sqlalchemy/driver errors carry no common base); callers name the URL."""
    if url.startswith(("journal:", "journal+file:")):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url.split(":", 1)[1]))
    return rdb_storage(url)


def repair_journal(path: Path) -> int:
    """Drop a half-written last line (a process killed mid-append); return bytes removed.

    Optuna's journal reader skips an unterminated last line, but the next append would land
    after it and make every later line unreadable. Done under the journal's own lock.
    """
    if not path.exists() or path.stat().st_size == 0 or _ends_with_newline(path):
        return 0  # nothing to repair: no lock taken, so a read-only study can still be read
    from optuna.storages.journal import JournalFileSymlinkLock

    lock = JournalFileSymlinkLock(str(path))
    try:
        lock.acquire()
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return 0  # read-only: nobody can append here, and the reader skips the partial line
        raise
    try:
        with open(path, "rb+") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - 1))
            if f.read(1) == b"\n":
                return 0
            keep, end = 0, size
            while end > 0:  # search backwards for the last complete line
                start = max(0, end - (1 << 16))
                f.seek(start)
                block = f.read(end - start)
                if b"\n" in block:
                    keep = start + block.rfind(b"\n") + 1
                    break
                end = start
            f.truncate(keep)
            return size - keep
    finally:
        lock.release()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b"\n"


__all__ = [
    "ENV_WORKER",
    "HEARTBEAT_GRACE_S",
    "HEARTBEAT_INTERVAL_S",
    "MASK",
    "journal_storage",
    "mask_url",
    "rdb_storage",
    "repair_journal",
    "sqlalchemy_url",
    "url_storage",
]
