"""Reports of a study: the Pareto front and hypervolume (pure functions over arrays), and the
renderers that consume them (offline HTML, Markdown, CSV, PNG); model cards for exported trials.

Light to import: pandas, plotly, matplotlib and moocore load only when a report is built.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "build_report",
    "derive_reference_point",
    "dominates",
    "export_trial",
    "hypervolume",
    "hypervolume_history",
    "pareto_front",
    "pareto_mask",
]

_LAZY = {
    "build_report": "edgetune.report._build",
    "export_trial": "edgetune.report._card",
    "derive_reference_point": "edgetune.report._pareto",
    "dominates": "edgetune.report._pareto",
    "hypervolume": "edgetune.report._pareto",
    "hypervolume_history": "edgetune.report._pareto",
    "pareto_front": "edgetune.report._pareto",
    "pareto_mask": "edgetune.report._pareto",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgetune.report' has no attribute {name!r}")
