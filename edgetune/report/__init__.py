"""Reports of a study: the Pareto front and hypervolume (pure functions over arrays), and the
renderers that consume them (offline HTML, Markdown, CSV, PNG; more with
:func:`register_renderer`). Model cards and ``edgetune export`` live in :mod:`edgetune.card`.

Light to import: pandas, plotly, matplotlib and moocore load only when a report is built.
"""

from __future__ import annotations

from edgetune._imports import lazy_getattr

__all__ = [
    "Renderer",
    "build_report",
    "derive_reference_point",
    "dominates",
    "get_renderer",
    "hypervolume",
    "hypervolume_history",
    "pareto_front",
    "pareto_mask",
    "register_renderer",
    "renderers",
]

_LAZY = {
    "Renderer": "edgetune.report._renderers",
    "build_report": "edgetune.report._build",
    "get_renderer": "edgetune.report._renderers",
    "register_renderer": "edgetune.report._renderers",
    "renderers": "edgetune.report._renderers",
    "derive_reference_point": "edgetune._pareto",
    "dominates": "edgetune._pareto",
    "hypervolume": "edgetune._pareto",
    "hypervolume_history": "edgetune._pareto",
    "pareto_front": "edgetune._pareto",
    "pareto_mask": "edgetune._pareto",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
