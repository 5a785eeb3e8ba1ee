"""Stage 0 of a study: the base every trial is derived from, made once and shared.

``base: {path: ...}`` is used as it is. ``base: {checkpoint: ...}`` and ``base: {train: ...}``
are made into ``<study dir>/base/`` under an exclusive file lock (``base.lock``): with several
worker processes on one host exactly one imports or trains it, the others wait for it and then
load the finished directory. Base training checkpoints every epoch, so a kill loses at most one
epoch and the next ``edgetune search`` continues it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edgetune.search._config import StudyConfig

BASE_DIR = "base"
LOCK = "base.lock"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def prepare_base(config: StudyConfig, study_dir: Path, log: Callable[[str], Any] = print,
                 progress: bool = True) -> Path | None:
    """The base directory of this study (made now if the config asks for it), or None without ``base:``."""
    section = config.base
    if section is None:
        return None
    from edgetune.base import BaseConfig, import_checkpoint, load_base, train_base

    if section.path is not None:
        path = Path(section.path).expanduser().resolve()
        with _locked(Path(study_dir) / LOCK):  # one worker rebuilds a missing model.onnx
            base = load_base(path)
        log(f"base {path}: {base.card.get('params', 0):,} parameters, test WER at "
            f"{base.card.get('export_chunk_ms')} ms {base.wer(int(base.card.get('export_chunk_ms', 320)))}")
        return path
    target = Path(study_dir) / BASE_DIR
    with _locked(Path(study_dir) / LOCK):
        if section.checkpoint is not None:
            chunks = sorted({int(c) for c in config.space.specs["chunk_ms"].grid_values()} | {320})
            import_checkpoint(section.checkpoint, section.family, section.model_config, target,
                              dataset=config.dataset, chunks=chunks, progress=progress, log=log)
        else:
            base_config = BaseConfig.from_dict({"dataset": config.dataset, **section.train}, source="base.train")
            log(f"stage 0: base {base_config.name!r} ({target}); the other workers wait for it")
            train_base(base_config, target, progress=progress, log=log, command="edgetune search (stage 0)")
    return target


def runner_kwargs(config: StudyConfig, base_dir: Path | None) -> dict[str, Any]:
    """The extra arguments the candidate runner gets when trials derive from a base."""
    if config.base is None or base_dir is None:
        return {}
    return {"base": str(base_dir), "init": config.base.init, "distill_weight": config.base.distill,
            "distill_temperature": config.base.distill_temperature}
