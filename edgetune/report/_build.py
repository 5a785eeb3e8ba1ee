"""Build ``<study dir>/report/``: collect once, run each renderer, swap the folder in atomically."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from edgetune._io import replace_dir
from edgetune.errors import ConfigError
from edgetune.report._collect import ReportData, collect, mark_sherpa_onnx
from edgetune.report._renderers import default_formats, get_renderer, report_files
from edgetune.search._config import StudyConfig
from edgetune.search._storage import StudyPaths, load_study_dir

if TYPE_CHECKING:  # pragma: no cover
    import optuna

REPORT_FILES = tuple(report_files())  # the built-in formats: index.html, pareto.md, trials.csv, pareto.png


def build_report(
    study_dir: str | Path,
    *,
    study: "optuna.Study | None" = None,
    config: StudyConfig | None = None,
    storage: str | None = None,
    out_dir: str | Path | None = None,
    interactive: bool = True,
    formats: Iterable[str] | None = None,
) -> Path:
    """Write the report's files (default: ``index.html``, ``pareto.md``, ``trials.csv`` and
    ``pareto.png``) and return the folder.

    The study is opened from ``study_dir`` unless ``study`` and ``config`` are given. The files
    are written into a temporary folder beside the destination which then replaces it, so a
    reader never sees a half-written report. ``interactive=False`` writes a small ``index.html``
    without JavaScript (plotly.js alone is several MB), e.g. to commit a report. ``formats``
    names the renderers to run (``html``, ``markdown``, ``csv``, ``png`` or registered ones,
    :func:`edgetune.report.register_renderer`); default: every renderer registered as a default.
    """
    renderers = [get_renderer(name) for name in (default_formats() if formats is None else formats)]
    if not renderers:
        raise ConfigError("formats must name at least one report format, e.g. ['html']; leave it out for the "
                          f"default ones ({', '.join(default_formats())})")
    paths = StudyPaths(Path(study_dir))
    if study is None or config is None:
        config, study = load_study_dir(paths.root, storage=storage)
    data = collect(study, config)
    mark_sherpa_onnx(data, paths.root)
    final = Path(out_dir) if out_dir is not None else paths.report
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        for renderer in renderers:
            renderer.render(data, tmp, {"interactive": interactive})
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def write_report_files(data: ReportData, folder: Path, *, interactive: bool = True,
                       formats: Iterable[str] | None = None) -> list[Path]:
    """Run the renderers of ``formats`` (default: the default ones) on ``data`` into ``folder``."""
    names = default_formats() if formats is None else list(formats)
    return [p for name in names for p in get_renderer(name).render(data, Path(folder), {"interactive": interactive})]


__all__ = ["REPORT_FILES", "build_report", "write_report_files"]
