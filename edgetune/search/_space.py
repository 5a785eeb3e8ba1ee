"""The search space: one small spec per knob, each validating its own range and mapping to
``trial.suggest_*``.

A knob is written in YAML in one of three forms::

    bits: 8                               # fixed: never suggested, always this value
    bits: [4, 8, 32]                      # choices -> trial.suggest_categorical
    sparsity: {low: 0.0, high: 0.9, step: 0.1}   # range -> trial.suggest_float (step/log optional)

What each knob may take is declared once in :data:`DOMAINS` (the extension point: a new
searched knob is one :class:`KnobDomain` entry plus its field on :class:`~edgetune.knobs.Knobs`).
Every value is also checked by ``Knobs`` itself, so a chunk of 100 ms fails here with the same
message (and fix) as anywhere else. Pure Python; optuna is only touched through the ``trial``
object passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from edgetune.errors import ConfigError, KeyConfigError
from edgetune.knobs import BITS, Knobs, Observer, PruneSchedule


class SuggestTrial(Protocol):
    """The part of ``optuna.trial.Trial`` a knob spec uses."""

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...


def _as_number(path: str, value: Any) -> float:
    """A YAML number. PyYAML reads ``1e-3`` (no dot) as a string, so numeric strings are accepted."""
    if isinstance(value, bool):
        raise KeyConfigError(path, f"must be a number, but got {value!r}")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise KeyConfigError(path, f"must be a number, but got {value!r}")


@dataclass(frozen=True)
class KnobDomain:
    """What one knob may take in a search: its kind, allowed choices or search bounds."""

    name: str
    kind: str  # "categorical" | "float"
    choices: tuple[Any, ...] = ()  # categorical: every allowed value
    low: float = 0.0  # float: search bounds (inclusive)
    high: float = 1.0
    allow_log: bool = False
    coerce: Callable[[str, Any], Any] = lambda path, v: v

    def check(self, path: str, value: Any) -> Any:
        """Coerce and validate one value of this knob, raising a KeyConfigError naming ``path``."""
        value = self.coerce(path, value)
        if self.kind == "categorical":
            if value not in self.choices or type(value) is not type(self.choices[0]):
                valid = ", ".join(repr(c) for c in self.choices)
                raise KeyConfigError(path, f"{self.name} must be one of {valid}, but got {value!r}")
        else:
            if not self.low <= value <= self.high:
                raise KeyConfigError(
                    path,
                    f"{self.name} must satisfy {self.low} <= {self.name} <= {self.high} in a search, "
                    f"but got {value!r}. Fix: pick a value in [{self.low}, {self.high}]",
                )
        try:
            Knobs(**{self.name: value})
        except ConfigError as exc:
            raise KeyConfigError(path, str(exc)) from None
        return value


def _int(path: str, v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    return v


def _float(path: str, v: Any) -> float:
    return float(_as_number(path, v))


def _enum_value(path: str, v: Any) -> Any:
    return v.value if hasattr(v, "value") else v


def _chunk(path: str, v: Any) -> int:
    v = _int(path, v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise KeyConfigError(path, f"chunk_ms must be an integer number of milliseconds, but got {v!r}")
    return v


def _bool(path: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise KeyConfigError(path, f"must be true or false, but got {v!r}")
    return v


#: The searchable knobs. Add a knob here (and on ``Knobs``) to make it searchable.
DOMAINS: dict[str, KnobDomain] = {
    d.name: d
    for d in (
        KnobDomain("bits", "categorical", choices=BITS, coerce=_int),
        KnobDomain("sparsity", "float", low=0.0, high=0.9, coerce=_float),
        KnobDomain("depth_multiplier", "float", low=0.25, high=1.0, coerce=_float),
        # chunk_ms is categorical over multiples of 40 ms; Knobs checks the multiple.
        KnobDomain("chunk_ms", "float", low=40, high=5120, coerce=_chunk),
        KnobDomain("observer", "categorical", choices=tuple(o.value for o in Observer), coerce=_enum_value),
        KnobDomain("lr", "float", low=1e-6, high=1.0, allow_log=True, coerce=_float),
        KnobDomain("specaugment", "categorical", choices=(False, True), coerce=_bool),
        KnobDomain(
            "prune_schedule", "categorical", choices=tuple(p.value for p in PruneSchedule), coerce=_enum_value
        ),
    )
}
#: Knobs that can be given as a choice list but never as a continuous range.
_CHOICE_ONLY = {"chunk_ms"}


class KnobSpec:
    """How one knob is searched. Subclasses: :class:`Fixed`, :class:`Choice`, :class:`FloatRange`."""

    name: str

    @property
    def searched(self) -> bool:
        return True

    def suggest(self, trial: SuggestTrial) -> Any:
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        raise NotImplementedError

    def grid_values(self) -> list[Any]:
        raise NotImplementedError

    def to_yaml(self) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Fixed(KnobSpec):
    """A knob held at one value: not suggested, so it is not an Optuna parameter."""

    name: str
    value: Any

    @property
    def searched(self) -> bool:
        return False

    def suggest(self, trial: SuggestTrial) -> Any:
        return self.value

    def contains(self, value: Any) -> bool:
        return value == self.value

    def grid_values(self) -> list[Any]:
        return [self.value]

    def to_yaml(self) -> Any:
        return self.value


@dataclass(frozen=True)
class Choice(KnobSpec):
    """A finite set of values: ``trial.suggest_categorical``."""

    name: str
    choices: tuple[Any, ...]

    def suggest(self, trial: SuggestTrial) -> Any:
        return trial.suggest_categorical(self.name, list(self.choices))

    def contains(self, value: Any) -> bool:
        return value in self.choices

    def grid_values(self) -> list[Any]:
        return list(self.choices)

    def to_yaml(self) -> Any:
        return list(self.choices)


@dataclass(frozen=True)
class FloatRange(KnobSpec):
    """A continuous range ``[low, high]``: ``trial.suggest_float`` (optionally stepped or log)."""

    name: str
    low: float
    high: float
    step: float | None = None
    log: bool = False

    def suggest(self, trial: SuggestTrial) -> float:
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def contains(self, value: Any) -> bool:
        if not self.low <= value <= self.high:
            return False
        if self.step is None:
            return True
        k = (value - self.low) / self.step
        return math.isclose(k, round(k), abs_tol=1e-9)

    def grid_values(self) -> list[float]:
        if self.step is None:
            raise KeyConfigError(
                f"space.{self.name}",
                "the grid sampler needs a finite set of values. Fix: add `step:` to the range "
                "or give a list of choices",
            )
        n = int(math.floor((self.high - self.low) / self.step + 1e-9))
        return [round(self.low + i * self.step, 12) for i in range(n + 1)]

    def to_yaml(self) -> Any:
        d: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.step is not None:
            d["step"] = self.step
        if self.log:
            d["log"] = True
        return d


def parse_knob(name: str, raw: Any, path: str) -> KnobSpec:
    """Build the spec of knob ``name`` from its YAML form (scalar, list or mapping)."""
    if name not in DOMAINS:
        valid = ", ".join(DOMAINS)
        raise KeyConfigError(path, f"unknown knob {name!r}; valid knobs are {valid}")
    dom = DOMAINS[name]
    if isinstance(raw, Mapping):
        keys = set(raw)
        if keys == {"value"}:
            return Fixed(name, dom.check(f"{path}.value", raw["value"]))
        if keys == {"choices"}:
            return parse_knob(name, raw["choices"], f"{path}.choices")
        allowed = {"low", "high", "step", "log"}
        unknown = sorted(keys - allowed)
        if unknown:
            raise KeyConfigError(
                path, f"unknown key(s) {unknown}; a range takes low, high, step, log (or use choices: / value:)"
            )
        if dom.kind != "float" or name in _CHOICE_ONLY:
            raise KeyConfigError(
                path, f"{name} takes a value or a list of choices, not a range. Fix: e.g. {name}: {list(dom.choices)[:3] or [320]}"
            )
        for k in ("low", "high"):
            if k not in raw:
                raise KeyConfigError(f"{path}.{k}", f"a range needs `{k}`")
        low = dom.check(f"{path}.low", raw["low"])
        high = dom.check(f"{path}.high", raw["high"])
        if low > high:
            raise KeyConfigError(f"{path}.high", f"`low <= high` must hold, but got low={low}, high={high}")
        step = raw.get("step")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise KeyConfigError(f"{path}.log", f"must be true or false, but got {log!r}")
        if log and not dom.allow_log:
            raise KeyConfigError(f"{path}.log", f"{name} cannot be searched on a log scale. Fix: remove `log`")
        if step is not None:
            step = _as_number(f"{path}.step", step)
            if step <= 0:
                raise KeyConfigError(f"{path}.step", f"must be > 0, but got {step!r}")
            if log:
                raise KeyConfigError(f"{path}.step", "step and log cannot both be set (Optuna rule). Fix: drop one")
            step = float(step)
        if low == high:
            return Fixed(name, low)
        return FloatRange(name, float(low), float(high), step, log)
    if isinstance(raw, (list, tuple)):
        if not raw:
            raise KeyConfigError(path, f"an empty list of choices. Fix: give at least one value for {name}")
        values = tuple(dom.check(f"{path}[{i}]", v) for i, v in enumerate(raw))
        if len(set(values)) != len(values):
            raise KeyConfigError(path, f"duplicate choices in {list(values)}")
        if len(values) == 1:
            return Fixed(name, values[0])
        return Choice(name, values)
    return Fixed(name, dom.check(path, raw))


def _default_specs() -> dict[str, KnobSpec]:
    defaults = Knobs().to_dict()
    return {name: Fixed(name, defaults[name]) for name in DOMAINS}


#: The space searched when a config says nothing about a knob (the brief's full edge space).
DEFAULT_SPACE: dict[str, Any] = {
    "bits": [4, 8, 16, 32],
    "sparsity": {"low": 0.0, "high": 0.9},
    "depth_multiplier": {"low": 0.25, "high": 1.0},
    "chunk_ms": [80, 160, 320, 640],
}


@dataclass(frozen=True)
class SearchSpace:
    """Every knob's spec. Knobs a config leaves out are fixed at their ``Knobs`` default."""

    specs: Mapping[str, KnobSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        specs = _default_specs()
        for name, spec in dict(self.specs).items():
            if name not in DOMAINS:
                raise KeyConfigError(f"space.{name}", f"unknown knob; valid knobs are {', '.join(DOMAINS)}")
            specs[name] = spec
        object.__setattr__(self, "specs", specs)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, path: str = "space") -> "SearchSpace":
        if d is None:
            d = DEFAULT_SPACE
        if not isinstance(d, Mapping):
            raise KeyConfigError(path, f"must be a mapping of knob -> value/choices/range, but got {d!r}")
        return cls({name: parse_knob(name, raw, f"{path}.{name}") for name, raw in d.items()})

    def to_dict(self) -> dict[str, Any]:
        return {name: spec.to_yaml() for name, spec in self.specs.items()}

    @property
    def searched(self) -> list[str]:
        """Names of knobs that are Optuna parameters (not fixed)."""
        return [n for n, s in self.specs.items() if s.searched]

    def suggest(self, trial: SuggestTrial) -> Knobs:
        """Ask ``trial`` for every searched knob and return the full candidate."""
        return Knobs(**{name: spec.suggest(trial) for name, spec in self.specs.items()})

    def knobs_from_params(self, params: Mapping[str, Any]) -> Knobs:
        """Rebuild a candidate from an Optuna trial's ``params`` (fixed knobs filled in)."""
        values = {n: (params[n] if n in params else s.grid_values()[0]) for n, s in self.specs.items()}
        return Knobs(**values)

    def contains(self, params: Mapping[str, Any]) -> bool:
        return all(self.specs[n].contains(v) for n, v in params.items() if n in self.specs)

    def grid(self) -> dict[str, list[Any]]:
        """The finite grid over searched knobs (for the grid sampler)."""
        return {n: self.specs[n].grid_values() for n in self.searched}

    def baseline_params(self) -> dict[str, Any]:
        """The least-compressed point of the space: the reference a search should beat.

        Widest bits, least sparsity, largest depth multiplier; the ``Knobs`` default (or the
        value nearest to it) for every other searched knob.
        """
        default = Knobs().to_dict()
        out: dict[str, Any] = {}
        for name in self.searched:
            spec = self.specs[name]
            if isinstance(spec, FloatRange):
                lo, hi = spec.low, spec.high
                want = {"sparsity": lo, "depth_multiplier": hi}.get(name, min(max(default[name], lo), hi))
                if spec.step is not None:  # snap onto the step grid
                    want = min(spec.grid_values(), key=lambda v: abs(v - want))
                out[name] = want
                continue
            values = spec.grid_values()
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            if name == "bits" or name == "depth_multiplier":
                out[name] = max(values)
            elif name == "sparsity":
                out[name] = min(values)
            elif default[name] in values:
                out[name] = default[name]
            elif numeric:
                out[name] = min(values, key=lambda v: abs(v - default[name]))
            else:
                out[name] = values[0]
        return out


__all__ = [
    "DEFAULT_SPACE",
    "DOMAINS",
    "Choice",
    "Fixed",
    "FloatRange",
    "KeyConfigError",
    "KnobDomain",
    "KnobSpec",
    "SearchSpace",
    "parse_knob",
]

