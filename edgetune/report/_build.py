"""Build ``<study dir>/report/``: collect once, render four files, swap the folder in atomically."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from edgetune._io import replace_dir
from edgetune.report._collect import ReportData, collect
from edgetune.report._render import render_csv, render_html, render_markdown, render_png
from edgetune.search._config import StudyConfig
from edgetune.search._storage import StudyPaths, load_study_dir

if TYPE_CHECKING:  # pragma: no cover
    import optuna

REPORT_FILES = ("index.html", "pareto.md", "trials.csv", "pareto.png")


def build_report(
    study_dir: str | Path,
    *,
    study: "optuna.Study | None" = None,
    config: StudyConfig | None = None,
    storage: str | None = None,
    out_dir: str | Path | None = None,
    interactive: bool = True,
) -> Path:
    """Write ``index.html``, ``pareto.md``, ``trials.csv`` and ``pareto.png`` and return the folder.

    The study is opened from ``study_dir`` unless ``study`` and ``config`` are given. The files
    are written into a temporary folder beside the destination which then replaces it, so a
    reader never sees a half-written report. ``interactive=False`` writes a small ``index.html``
    without JavaScript (plotly.js alone is several MB), e.g. to commit a report.
    """
    paths = StudyPaths(Path(study_dir))
    if study is None or config is None:
        config, study = load_study_dir(paths.root, storage=storage)
    data = collect(study, config)
    final = Path(out_dir) if out_dir is not None else paths.report
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        write_report_files(data, tmp, interactive=interactive)
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def write_report_files(data: ReportData, folder: Path, *, interactive: bool = True) -> None:
    (folder / "index.html").write_text(render_html(data, interactive=interactive), encoding="utf-8")
    (folder / "pareto.md").write_text(render_markdown(data), encoding="utf-8")
    (folder / "trials.csv").write_text(render_csv(data), encoding="utf-8")
    render_png(data, folder / "pareto.png")


__all__ = ["REPORT_FILES", "build_report", "write_report_files"]
