"""The one vocabulary of metrics and budgets, at the bottom of the import chain.

:data:`METRICS` are the numbers a study can minimise or budget, each read from a candidate's
``result.json``; :data:`CHECK_LIMITS` the keys an ``edgetune check`` budgets file may limit.
:class:`Budget` (``"metric <= value"``, also ``{metric: value}``) is the one budget type and
parser; :class:`CheckBudget` is it over the check keys.

``latency_ms`` as an objective is what a user waits for: the p90 compute time of one
streaming chunk plus the algorithmic latency (chunk length + lookahead), so a long chunk is
not mistaken for a fast model. Every metric is minimised. Imports only :mod:`edgetune.errors`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

from edgetune.errors import ConfigError, KeyConfigError


@dataclass(frozen=True)
class Metric:
    """One minimised number derived from a result dict."""

    name: str
    role: str  # "accuracy" | "latency" | "size" | "memory"
    label: str
    unit: str
    extract: Callable[[Mapping[str, Any]], float]

    def value(self, result: Mapping[str, Any]) -> float:
        """The metric of one result, raising ConfigError if the result lacks it."""
        try:
            v = float(self.extract(result))
        except (KeyError, TypeError) as exc:
            raise ConfigError(
                f"result has no {self.name!r} (missing {exc}); keys present: {sorted(result)}"
            ) from None
        return v


def _p(key: str) -> Callable[[Mapping[str, Any]], float]:
    return lambda r: r["latency_ms"][key]


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("wer", "accuracy", "WER", "", lambda r: r["wer"]),
        Metric("worst_group_wer", "accuracy", "worst-group WER", "", lambda r: r["worst_group_wer"]),
        Metric(
            "latency_ms",
            "latency",
            "latency (p90 chunk compute + algorithmic)",
            "ms",
            lambda r: r["latency_ms"]["p90"] + r["algorithmic_latency_ms"],
        ),
        Metric("compute_p90_ms", "latency", "p90 chunk compute", "ms", _p("p90")),
        Metric("compute_p50_ms", "latency", "p50 chunk compute", "ms", _p("p50")),
        Metric("compute_p99_ms", "latency", "p99 chunk compute", "ms", _p("p99")),
        Metric("rtf", "latency", "real-time factor", "", lambda r: r["rtf"]),
        Metric("size_bytes", "size", "model size", "bytes", lambda r: r["size_bytes"]),
        Metric("gzip_bytes", "size", "gzipped model size", "bytes", lambda r: r["gzip_bytes"]),
        Metric("peak_rss_bytes", "memory", "peak RSS", "bytes", lambda r: r["peak_rss_bytes"]),
    )
}

_BUDGET = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=)\s*([-+0-9.eE_]+)\s*$")


@dataclass(frozen=True)
class Budget:
    """``metric <= bound`` (or ``>=``) over a study metric: an Optuna constraint, feasible when the value is ≤ 0.

    The one budget type: :class:`CheckBudget` is the same rule over the names of ``edgetune
    check``'s budgets file. A subclass sets ``vocabulary`` (the names it may budget) and ``ops``.
    """

    metric: str
    op: str
    bound: float
    vocabulary: ClassVar[Mapping[str, Any]] = METRICS
    ops: ClassVar[tuple[str, ...]] = ("<=", ">=")

    def __post_init__(self) -> None:
        if self.metric not in self.vocabulary:
            raise ConfigError(f"unknown metric {self.metric!r} in a budget; valid metrics are "
                              f"{', '.join(self.vocabulary)}")
        if self.op not in self.ops:
            raise ConfigError(f"a budget compares with {' or '.join(self.ops)}, but got {self.op!r}")
        self._check_bound()

    def _check_bound(self) -> None:
        """Refuse a bound that is not finite, or that no value can meet (a study metric's role says
        whether it can be 0)."""
        if not math.isfinite(self.bound):
            raise ConfigError(f"a budget bound must be a finite number, but got {self.bound!r}")
        positive = METRICS[self.metric].role != "accuracy"  # latency, size, memory: never 0
        if self.op == "<=" and (self.bound < 0 or (positive and self.bound == 0)):
            raise ConfigError(
                f"budget '{self}' can never be met: {self.metric} is always "
                f"{'> 0' if positive else '>= 0'}, so every trial would be over budget and the front "
                f"empty. Fix: use a positive bound (e.g. '{self.metric} <= "
                f"{'300' if self.metric == 'latency_ms' else '5e6' if positive else '0.5'}')"
            )

    @classmethod
    def parse(cls, text: Any, path: str = "budgets") -> "Budget":
        """Parse ``"latency_ms <= 20"`` (also ``{latency_ms: 20}``, meaning ``<=``)."""
        if isinstance(text, Mapping) and len(text) == 1:
            (metric, bound), = text.items()
            text = f"{metric} <= {bound}"
        m = _BUDGET.match(str(text)) if isinstance(text, str) else None
        if not m:
            raise KeyConfigError(path, f"a budget reads like 'latency_ms <= 20' or 'size_bytes <= 5e6', but got {text!r}")
        metric, op, num = m.groups()
        if metric not in cls.vocabulary:
            raise KeyConfigError(path, f"unknown metric {metric!r}; valid metrics are {', '.join(cls.vocabulary)}")
        try:
            bound = float(num.replace("_", ""))
        except ValueError:
            raise KeyConfigError(path, f"the bound {num!r} is not a number") from None
        try:
            return cls(metric, op, bound)
        except ConfigError as exc:
            raise KeyConfigError(path, str(exc)) from None

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"

    @property
    def name(self) -> str:
        """The Optuna constraint key."""
        return f"{self.metric}{'_max' if self.op == '<=' else '_min'}"

    def violation(self, value: float) -> float:
        """Relative violation: ≤ 0 is within budget. Relative, so byte and ms budgets weigh alike."""
        scale = abs(self.bound) if self.bound != 0 else 1.0
        diff = value - self.bound if self.op == "<=" else self.bound - value
        return diff / scale

    def satisfied(self, value: float) -> bool:
        """Within budget: the same verdict as ``violation(value) <= 0``, also for an infinite bound."""
        return value <= self.bound if self.op == "<=" else value >= self.bound


#: ``edgetune check``'s limit keys (bench JSON / result.json fields, see :mod:`edgetune.bench._check`) -> unit.
CHECK_LIMITS: dict[str, str] = {
    "p50_ms": "ms", "p90_ms": "ms", "p99_ms": "ms", "mean_ms": "ms", "rtf": "", "size_bytes": "B",
    "gzip_bytes": "B", "peak_rss_bytes": "B", "algorithmic_latency_ms": "ms", "wer": "", "wer_delta": "",
}


@dataclass(frozen=True)
class CheckBudget(Budget):
    """``key <= limit`` over an ``edgetune check`` limit key (``p90_ms: 2.0`` in a budgets file)."""

    vocabulary: ClassVar[Mapping[str, Any]] = CHECK_LIMITS
    ops: ClassVar[tuple[str, ...]] = ("<=",)

    def _check_bound(self) -> None:  # as a budgets file always read: any number >= 0 (.inf: no limit)
        if self.bound < 0:
            raise ConfigError(f"budget '{self}': {self.metric} must be >= 0, but got {self.bound!r}")

    @property
    def unit(self) -> str:
        return CHECK_LIMITS[self.metric]


def metric_values(result: Mapping[str, Any]) -> dict[str, float]:
    """Every metric this result carries (missing ones are skipped)."""
    out = {}
    for name, m in METRICS.items():
        try:
            out[name] = m.value(result)
        except ConfigError:
            continue
    return out


__all__ = ["CHECK_LIMITS", "Budget", "CheckBudget", "METRICS", "Metric", "metric_values"]
