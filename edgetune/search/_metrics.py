"""The objectives a study may minimise, position by position. The metrics and the budget type
have their one home in :mod:`edgetune._metrics` (re-exported here)."""

from __future__ import annotations

from typing import Any

from edgetune._metrics import METRICS, Budget, Metric, metric_values
from edgetune.errors import KeyConfigError

#: What the objectives of a study may be, position by position.
OBJECTIVE_SLOTS = (("wer", "worst_group_wer"), ("latency_ms", "rtf"), ("size_bytes", "gzip_bytes"))


def check_objectives(objectives: Any, path: str = "objectives") -> tuple[str, ...]:
    """Validate ``[accuracy, latency(, size)]``; raise with the valid names per position."""
    if isinstance(objectives, str) or not isinstance(objectives, (list, tuple)):
        raise KeyConfigError(path, f"must be a list like [wer, latency_ms] or [wer, latency_ms, size_bytes], got {objectives!r}")
    if not 2 <= len(objectives) <= 3:
        raise KeyConfigError(path, f"takes 2 or 3 entries (accuracy, latency, optional size), got {len(objectives)}")
    for i, name in enumerate(objectives):
        allowed = OBJECTIVE_SLOTS[i]
        if name not in allowed:
            what = ("accuracy", "latency", "size")[i]
            raise KeyConfigError(f"{path}[{i}]", f"the {what} objective must be one of {', '.join(allowed)}, but got {name!r}")
    return tuple(objectives)


__all__ = ["Budget", "METRICS", "Metric", "OBJECTIVE_SLOTS", "check_objectives", "metric_values"]
