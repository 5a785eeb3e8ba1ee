"""Where a study lives: its directory, its Optuna storage, and the compatibility check.

Default storage is an Optuna journal file inside the study directory (``journal.log``):
about 10x faster than SQLite per trial write and one plain file to copy. Any Optuna storage
URL also works (``postgresql://...`` for several workers on several machines; RDB storages
get a heartbeat so a dead worker's trial is noticed). The study's config is saved both as
``<study dir>/study.yaml`` and as a study user attribute, so a rerun with a different config is
refused whichever of the two it meets first.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgetune._attrs import CONFIG_ATTR
from edgetune.errors import ConfigError, StudyError
from edgetune.search._config import MASK, StudyConfig, load_config, mask_url, save_config

if TYPE_CHECKING:  # pragma: no cover
    import optuna

JOURNAL_NAME = "journal.log"
HEARTBEAT_INTERVAL_S = 30
HEARTBEAT_GRACE_S = 120


@dataclass(frozen=True)
class StudyPaths:
    """The layout of a study directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "study.yaml"

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL_NAME

    @property
    def trials(self) -> Path:
        return self.root / "trials"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def trial_dir(self, number: int) -> Path:
        return self.trials / str(number)

    def artifact(self, number: int) -> Path:
        return self.trial_dir(number) / "model.onnx"


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


def storage_description(config: StudyConfig, paths: StudyPaths) -> str:
    return mask_url(config.storage) if config.storage else f"journal file {paths.journal}"


def _rdb_storage(url: str, attempts: int = 6) -> "optuna.storages.RDBStorage":
    """An RDB storage with a heartbeat. Workers starting together on a fresh database race to
    create its tables (one gets an IntegrityError); the losers retry after a short pause."""
    import random
    import time
    import warnings

    import optuna

    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeat_interval is "experimental" since optuna 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    sqlalchemy_url(url), heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=HEARTBEAT_GRACE_S
                )
        except Exception as exc:
            if attempt == attempts - 1 or type(exc).__name__ not in ("IntegrityError", "ProgrammingError"):
                raise
            time.sleep(0.2 + random.random() * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def open_storage(config: StudyConfig, paths: StudyPaths) -> "optuna.storages.BaseStorage":
    """The Optuna storage of a study (journal file by default), or a StudyError naming the URL."""
    if config.storage is None:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        paths.root.mkdir(parents=True, exist_ok=True)
        repair_journal(paths.journal)
        return JournalStorage(JournalFileBackend(str(paths.journal)))
    url = config.storage
    try:
        if url.startswith(("journal:", "journal+file:")):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            return JournalStorage(JournalFileBackend(url.split(":", 1)[1]))
        return _rdb_storage(url)
    except Exception as exc:  # sqlalchemy/driver errors carry no common base
        raise StudyError(
            f"cannot open study storage {mask_url(url)}: {type(exc).__name__}: {exc}. "
            "Fix: check the URL, that the database server is reachable, and that its driver "
            "is installed (pip install 'edgetune[postgres]' for postgresql://)"
        ) from None


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


def check_study_dir(config: StudyConfig, paths: StudyPaths) -> StudyConfig | None:
    """Refuse an incompatible config for an existing study directory; return the saved config."""
    if not paths.config.exists():
        if paths.journal.exists():
            raise StudyError(
                f"{paths.root} has a study journal but no study.yaml; it was not made by this edgetune "
                "or its config was deleted. Fix: use another --study-dir, or restore study.yaml"
            )
        return None
    try:
        saved = load_config(paths.config)
    except ConfigError as exc:
        raise StudyError(f"the saved config {paths.config} is unreadable: {exc}") from None
    _refuse_if_different(saved, config, f"{paths.config}")
    return saved


def _refuse_if_different(saved: StudyConfig, new: StudyConfig, where: str) -> None:
    diffs = saved.diff(new)
    if diffs:
        shown = "; ".join(diffs[:8]) + (f"; ... ({len(diffs) - 8} more)" if len(diffs) > 8 else "")
        raise StudyError(
            f"the study in {where} was run with a different config ({shown}). Resuming would mix "
            "incomparable trials. Fix: use a new --study-dir (or study_name), or restore the saved "
            "settings; only n_trials may change to extend a study"
        )


def open_study(config: StudyConfig, paths: StudyPaths, *, create: bool = True) -> "optuna.Study":
    """Create or load the study; refuse it if its stored config differs from ``config``."""
    import optuna

    if create:
        check_study_dir(config, paths)
    storage = open_storage(config, paths)
    try:
        if create:  # load_if_exists: several workers may start the same study at once
            study = optuna.create_study(
                study_name=config.study_name, storage=storage, directions=config.directions, load_if_exists=True
            )
            if CONFIG_ATTR not in study.user_attrs:
                study.set_user_attr(CONFIG_ATTR, config.to_dict(mask=True))
        else:
            study = optuna.load_study(study_name=config.study_name, storage=storage)
    except KeyError:
        raise StudyError(
            f"no study named {config.study_name!r} in {storage_description(config, paths)}. "
            "Fix: check --study-dir / --storage, or run `edgetune search` first"
        ) from None
    except Exception as exc:
        from edgetune.search._trials import infrastructure_error, infrastructure_hint

        infra = infrastructure_error(exc)
        fix = f". Fix: {infrastructure_hint(infra)}" if infra is not None else ""
        raise StudyError(
            f"cannot open study {config.study_name!r} in {storage_description(config, paths)}: "
            f"{type(exc).__name__}: {exc}{fix}"
        ) from None
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is not None:  # the storage URL itself may differ (same database, another name for it)
        saved = StudyConfig.from_dict(stored).replace(storage=config.storage)
        _refuse_if_different(saved, config, f"storage {storage_description(config, paths)}")
    if len(study.directions) != len(config.objectives):
        raise StudyError(
            f"study {config.study_name!r} has {len(study.directions)} objectives but the config has "
            f"{len(config.objectives)}. Fix: use a new study_name"
        )
    if create:
        save_config(config, paths.config)
    return study


def load_study_dir(study_dir: str | Path, storage: str | None = None) -> tuple[StudyConfig, "optuna.Study"]:
    """Open an existing study from its directory (for report and export)."""
    paths = StudyPaths(Path(study_dir))
    if not paths.config.exists():
        raise StudyError(
            f"{paths.root} is not a study directory (no study.yaml). Fix: pass the --study-dir that "
            "`edgetune search` wrote"
        )
    config = load_config(paths.config)
    if storage is not None:
        config = config.replace(storage=storage)
    elif config.storage and MASK in config.storage:
        raise StudyError(
            f"{paths.config} saves the storage URL without its password ({config.storage}). "
            "Fix: pass the full URL with --storage (or use a password file such as ~/.pgpass)"
        )
    return config, open_study(config, paths, create=False)


__all__ = [
    "CONFIG_ATTR",
    "StudyPaths",
    "check_study_dir",
    "load_study_dir",
    "mask_url",
    "open_storage",
    "open_study",
    "repair_journal",
]
