"""Where a study lives: its directory, its Optuna storage, and the compatibility check.

Default storage is an Optuna journal file inside the study directory (``journal.log``):
about 10x faster than SQLite per trial write and one plain file to copy. Any Optuna storage
URL also works (``postgresql://...`` for several workers on several machines; RDB storages
get a heartbeat so a dead worker's trial is noticed). The study's config is saved both as
``<study dir>/study.yaml`` and as a study user attribute, so a rerun with a different config is
refused whichever of the two it meets first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgetune._attrs import CONFIG_ATTR
from edgetune._storage import MASK, journal_storage, mask_url, repair_journal, sqlalchemy_url, url_storage
from edgetune.errors import ConfigError, StudyError
from edgetune.search._config import StudyConfig, load_config, save_config

if TYPE_CHECKING:  # pragma: no cover
    import optuna

JOURNAL_NAME = "journal.log"


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


def storage_description(config: StudyConfig, paths: StudyPaths) -> str:
    return mask_url(config.storage) if config.storage else f"journal file {paths.journal}"


def open_storage(config: StudyConfig, paths: StudyPaths) -> "optuna.storages.BaseStorage":
    """The Optuna storage of a study (journal file by default), or a StudyError naming the URL."""
    if config.storage is None:
        return journal_storage(paths.journal)
    url = config.storage
    try:
        return url_storage(url)
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

    if create and check_study_dir(config, paths) is None and not config.storage:
        # a new study in a journal file: name the directory a study before the journal appears, so
        # a reader (another worker, `edgetune report`) never sees a journal without its study.yaml
        save_config(config, paths.config)
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
    "sqlalchemy_url",
]
