"""Where a study lives: its directory, its Optuna storage, and the compatibility check.

Default storage is an Optuna journal file inside the study directory (``journal.log``):
about 10x faster than SQLite per trial write and one plain file to copy. Any Optuna storage
URL also works (``postgresql://...`` for several workers on several machines; RDB storages
get a heartbeat so a dead worker's trial is noticed). The study's config is saved both as
``<study dir>/study.yaml`` and as a study user attribute, so a rerun with a different config is
refused whichever of the two it meets first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetune.errors import ConfigError, StudyError
from edgetune.search._config import StudyConfig, load_config, save_config

if TYPE_CHECKING:  # pragma: no cover
    import optuna

CONFIG_ATTR = "edgetune_config"
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


def mask_url(url: str) -> str:
    """Hide a password in a storage URL before printing it."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)


def storage_description(config: StudyConfig, paths: StudyPaths) -> str:
    return mask_url(config.storage) if config.storage else f"journal file {paths.journal}"


def open_storage(config: StudyConfig, paths: StudyPaths) -> "optuna.storages.BaseStorage":
    """The Optuna storage of a study (journal file by default), or a StudyError naming the URL."""
    import optuna

    if config.storage is None:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        paths.root.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(paths.journal)))
    url = config.storage
    try:
        if url.startswith(("journal:", "journal+file:")):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            return JournalStorage(JournalFileBackend(url.split(":", 1)[1]))
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=HEARTBEAT_GRACE_S
        )
    except Exception as exc:  # sqlalchemy/driver errors carry no common base
        raise StudyError(
            f"cannot open study storage {mask_url(url)}: {type(exc).__name__}: {exc}. "
            "Fix: check the URL, that the database server is reachable, and that its driver "
            "is installed (pip install 'edgetune[postgres]' for postgresql://)"
        ) from None


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
        study = optuna.load_study(study_name=config.study_name, storage=storage)
    except KeyError:
        if not create:
            raise StudyError(
                f"no study named {config.study_name!r} in {storage_description(config, paths)}. "
                "Fix: check --study-dir / --storage, or run `edgetune search` first"
            ) from None
        study = optuna.create_study(
            study_name=config.study_name, storage=storage, directions=config.directions
        )
        study.set_user_attr(CONFIG_ATTR, config.to_dict())
    except StudyError:
        raise
    except Exception as exc:
        raise StudyError(
            f"cannot load study {config.study_name!r} from {storage_description(config, paths)}: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is not None:
        _refuse_if_different(StudyConfig.from_dict(stored), config, f"storage {storage_description(config, paths)}")
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
    return config, open_study(config, paths, create=False)


def json_safe(value: Any) -> Any:
    """Plain JSON data (numpy scalars/arrays, tuples, enums and paths converted)."""
    import json

    def default(o: Any) -> Any:
        if hasattr(o, "tolist"):
            return o.tolist()
        if hasattr(o, "value"):
            return o.value
        return str(o)

    return json.loads(json.dumps(value, default=default, allow_nan=True))


__all__ = [
    "CONFIG_ATTR",
    "StudyPaths",
    "check_study_dir",
    "json_safe",
    "load_study_dir",
    "mask_url",
    "open_storage",
    "open_study",
]
