"""What ``edgetune base tune --config base-tune.yaml`` reads (pure Python): the base, the knobs, the budget.

A tune config names a base config (inline mapping, or a path to a ``base.yaml`` relative to the
tune file) and the training-recipe knobs to search; each knob is a :class:`KnobSpec` that
validates its own range and maps to one ``trial.suggest_*`` call::

    version: 1
    study_name: tune-5m
    base: base-5m.yaml
    metric: wer                     # dev WER (greedy CTC, PyTorch) of the last epoch; or dev_loss
    n_trials: 40
    sampler: tpe                    # tpe | random
    pruner: {type: hyperband, min_resource: 2, reduction_factor: 3}   # none | median | successive_halving | hyperband
    proxy: {data_fraction: 0.25, epochs: 12}
    space:
      lr: {low: 1.0e-3, high: 1.0e-2, log: true}
      batch_size: {choices: [64, 128, 256]}
      dropout: {low: 0.0, high: 0.3}
    enqueue: [{lr: 4.0e-3}]         # knob settings tried first (e.g. the default recipe)
    final: {seeds: [0, 1, 2], compare_default: true}
    pbt: {population: 4, interval: 2, quantile: 0.25}
    tracking: none                  # or mlflow (local store sqlite:///<study>/mlflow.db unless mlflow_uri)
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from edgetune.base._config import BaseConfig, load_base_config
from edgetune.errors import ConfigError

#: knob name -> (where it lives in the base config, its type)
TUNABLE: dict[str, tuple[str, type]] = {
    "lr": ("train", float),
    "batch_size": ("train", int),
    "weight_decay": ("train", float),
    "warmup_fraction": ("train", float),
    "grad_clip": ("train", float),
    "specaugment": ("train", bool),
    "freq_width": ("train", int),
    "time_width": ("train", int),
    "dropout": ("model_config", float),
}
METRICS = ("wer", "dev_loss")


class PrunerKind(str, Enum):
    NONE = "none"
    MEDIAN = "median"
    SUCCESSIVE_HALVING = "successive_halving"
    HYPERBAND = "hyperband"


class SamplerKind(str, Enum):
    TPE = "tpe"
    RANDOM = "random"


def _choice(enum: type[Enum], value: Any, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise ConfigError(f"{what} must be one of {[e.value for e in enum]}, but got {value!r}") from None


@dataclass(frozen=True)
class KnobSpec:
    """One searched knob: a range ``[low, high]`` (``log``, ``step``) or a list of ``choices``."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if self.name not in TUNABLE:
            raise ConfigError(f"tune space knob {self.name!r} is unknown; valid knobs are {sorted(TUNABLE)}")
        kind = TUNABLE[self.name][1]
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
            if not self.choices or self.low is not None or self.high is not None:
                raise ConfigError(f"tune space {self.name}: give either a non-empty choices list or low/high, "
                                  f"but got choices={self.choices!r}, low={self.low!r}, high={self.high!r}")
            return
        if kind is bool:
            raise ConfigError(f"tune space {self.name} is on/off: write {{choices: [true, false]}}")
        if self.low is None or self.high is None or not float(self.low) <= float(self.high):
            raise ConfigError(f"tune space {self.name}: `low <= high` must hold, but got (low={self.low}, "
                              f"high={self.high})")
        if self.log and float(self.low) <= 0:
            raise ConfigError(f"tune space {self.name}: a log range needs low > 0, but got low={self.low}")
        if kind is int and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ConfigError(f"tune space {self.name} is an integer knob, but got low={self.low}, high={self.high}")

    @property
    def numeric(self) -> bool:
        return self.choices is None

    def suggest(self, trial: Any) -> Any:
        """The knob's value for an Optuna trial."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if TUNABLE[self.name][1] is int:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log, step=self.step)

    def sample(self, rng: random.Random) -> Any:
        """A random value (population-based training's initial population and resampling)."""
        if self.choices is not None:
            return rng.choice(self.choices)
        lo, hi = float(self.low), float(self.high)
        x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if self.log else rng.uniform(lo, hi)
        return self.clip(x)

    def clip(self, value: float) -> Any:
        x = min(float(self.high), max(float(self.low), float(value)))
        return int(round(x)) if TUNABLE[self.name][1] is int else x

    def to_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        d: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            d["log"] = True
        if self.step is not None:
            d["step"] = self.step
        return d

    @classmethod
    def from_dict(cls, name: str, d: Any) -> "KnobSpec":
        if isinstance(d, list):
            d = {"choices": d}
        if not isinstance(d, dict):
            raise ConfigError(f"tune space {name} must be a mapping ({{low, high, log}} or {{choices}}), got {d!r}")
        unknown = sorted(set(d) - {"low", "high", "log", "step", "choices"})
        if unknown:
            raise ConfigError(f"tune space {name}: unknown key(s) {unknown}; valid keys are "
                              "['choices', 'high', 'log', 'low', 'step']")
        return cls(name=name, **d)


@dataclass(frozen=True)
class PrunerConfig:
    """Optuna's own pruner, fed dev ``metric`` after every epoch (``step`` = epoch)."""

    type: PrunerKind = PrunerKind.MEDIAN
    n_startup_trials: int = 5    # median: trials that finish before any is pruned
    n_warmup_steps: int = 0      # median: epochs before pruning starts in a trial
    min_resource: int = 1        # successive halving / hyperband: epochs of the first rung
    reduction_factor: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", _choice(PrunerKind, self.type, "tune pruner.type"))
        for key in ("n_startup_trials", "n_warmup_steps", "min_resource"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"tune pruner.{key} must be an integer >= 0, but got {v!r}")
        if isinstance(self.reduction_factor, bool) or not isinstance(self.reduction_factor, int) \
                or self.reduction_factor < 2:
            raise ConfigError(f"tune pruner.reduction_factor must be an integer >= 2, but got {self.reduction_factor!r}")

    def build(self, max_epochs: int) -> Any:
        import optuna

        p = optuna.pruners
        if self.type == PrunerKind.NONE:
            return p.NopPruner()
        if self.type == PrunerKind.MEDIAN:
            return p.MedianPruner(n_startup_trials=self.n_startup_trials, n_warmup_steps=self.n_warmup_steps)
        if self.type == PrunerKind.SUCCESSIVE_HALVING:
            return p.SuccessiveHalvingPruner(min_resource=max(1, self.min_resource),
                                             reduction_factor=self.reduction_factor)
        return p.HyperbandPruner(min_resource=max(1, self.min_resource), max_resource=max_epochs,
                                 reduction_factor=self.reduction_factor)


@dataclass(frozen=True)
class ProxyConfig:
    """The cheap fidelity every trial trains at: a fixed random share of train, and epochs."""

    data_fraction: float = 1.0
    epochs: int | None = None    # None: the base config's train.epochs

    def __post_init__(self) -> None:
        if isinstance(self.data_fraction, bool) or not 0.0 < float(self.data_fraction) <= 1.0:
            raise ConfigError(f"tune proxy.data_fraction must be in (0, 1], but got {self.data_fraction!r}")
        if self.epochs is not None and (isinstance(self.epochs, bool) or not isinstance(self.epochs, int)
                                        or self.epochs < 1):
            raise ConfigError(f"tune proxy.epochs must be an integer >= 1, but got {self.epochs!r}")


@dataclass(frozen=True)
class FinalConfig:
    """The best configuration retrained on all data at full epochs, once per seed (``train_base``)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int | None = None    # None: the base config's train.epochs
    compare_default: bool = False   # also train the base config's own recipe at the same seeds

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(self.seeds))
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in self.seeds):
            raise ConfigError(f"tune final.seeds must list integer seeds, but got {list(self.seeds)!r}")


@dataclass(frozen=True)
class PbtConfig:
    """Population-based training: every ``interval`` epochs the bottom ``quantile`` copy a top member."""

    population: int = 4
    interval: int = 1
    quantile: float = 0.25
    perturb: tuple[float, ...] = (0.8, 1.25)
    resample_probability: float = 0.25

    def __post_init__(self) -> None:
        object.__setattr__(self, "perturb", tuple(float(x) for x in self.perturb))
        if isinstance(self.population, bool) or not isinstance(self.population, int) or self.population < 2:
            raise ConfigError(f"tune pbt.population must be an integer >= 2, but got {self.population!r}")
        if isinstance(self.interval, bool) or not isinstance(self.interval, int) or self.interval < 1:
            raise ConfigError(f"tune pbt.interval must be an integer >= 1 (epochs), but got {self.interval!r}")
        if not 0.0 < self.quantile <= 0.5:
            raise ConfigError(f"tune pbt.quantile must be in (0, 0.5], but got {self.quantile!r}")
        if not self.perturb or any(f <= 0 for f in self.perturb):
            raise ConfigError(f"tune pbt.perturb must list positive factors, but got {list(self.perturb)!r}")
        if not 0.0 <= self.resample_probability <= 1.0:
            raise ConfigError(f"tune pbt.resample_probability must be in [0, 1], but got {self.resample_probability!r}")


@dataclass(frozen=True)
class TuneConfig:
    """One tuning study of a base's training recipe (single objective: ``metric`` on dev, minimised)."""

    base: BaseConfig
    space: dict[str, KnobSpec]
    study_name: str = "base-tune"
    metric: str = "wer"
    n_trials: int = 20
    seed: int = 0
    sampler: SamplerKind = SamplerKind.TPE
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    enqueue: tuple[dict[str, Any], ...] = ()
    final: FinalConfig = field(default_factory=FinalConfig)
    pbt: PbtConfig = field(default_factory=PbtConfig)
    tracking: str = "none"
    mlflow_uri: str | None = None
    storage: str | None = None
    version: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "sampler", _choice(SamplerKind, self.sampler, "tune sampler"))
        object.__setattr__(self, "enqueue", tuple(dict(e) for e in self.enqueue))
        if not self.space:
            raise ConfigError(f"tune space must name at least one knob; valid knobs are {sorted(TUNABLE)}")
        if self.metric not in METRICS:
            raise ConfigError(f"tune metric must be one of {list(METRICS)}, but got {self.metric!r}")
        if isinstance(self.n_trials, bool) or not isinstance(self.n_trials, int) or self.n_trials < 1:
            raise ConfigError(f"tune n_trials must be an integer >= 1, but got {self.n_trials!r}")
        if self.tracking not in ("none", "mlflow"):
            raise ConfigError(f"tune tracking must be 'none' or 'mlflow', but got {self.tracking!r}")
        for i, entry in enumerate(self.enqueue):
            unknown = sorted(set(entry) - set(self.space))
            if unknown:
                raise ConfigError(f"tune enqueue[{i}] sets {unknown}, which are not in space {sorted(self.space)}")
        if self.version != 1:
            raise ConfigError(f"tune config version must be 1, but got {self.version!r}")

    @property
    def proxy_epochs(self) -> int:
        return self.proxy.epochs or self.base.train.epochs

    def recipe(self, params: dict[str, Any], *, epochs: int | None = None, seed: int | None = None) -> BaseConfig:
        """The base config with ``params`` applied (and ``epochs`` / ``seed`` when given)."""
        train = {k: v for k, v in params.items() if TUNABLE[k][0] == "train"}
        model = {k: v for k, v in params.items() if TUNABLE[k][0] == "model_config"}
        if epochs is not None:
            train["epochs"] = epochs
        if seed is not None:
            train["seed"] = seed
        return dataclasses.replace(self.base, train=dataclasses.replace(self.base.train, **train),
                                   model_config={**self.base.model_config, **model})

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version, "study_name": self.study_name, "base": self.base.to_dict(),
            "metric": self.metric, "n_trials": self.n_trials, "seed": self.seed, "sampler": self.sampler.value,
            "pruner": {**dataclasses.asdict(self.pruner), "type": self.pruner.type.value},
            "proxy": dataclasses.asdict(self.proxy), "space": {k: v.to_dict() for k, v in self.space.items()},
            "enqueue": [dict(e) for e in self.enqueue],
            "final": {**dataclasses.asdict(self.final), "seeds": list(self.final.seeds)},
            "pbt": {**dataclasses.asdict(self.pbt), "perturb": list(self.pbt.perturb)},
            "tracking": self.tracking, "mlflow_uri": self.mlflow_uri, "storage": self.storage,
        }

    def diff(self, other: "TuneConfig") -> list[str]:
        """Keys that make two studies incomparable (``n_trials``, ``storage``, ``final`` and tracking may change)."""
        a, b = self.to_dict(), other.to_dict()
        free = {"n_trials", "storage", "final", "tracking", "mlflow_uri"}
        return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
                if k not in free and a.get(k) != b.get(k)]

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "tune config", folder: Path | None = None) -> "TuneConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"{source} must be a mapping of keys, but got {type(d).__name__}")
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; valid keys are {sorted(known)}")
        base = d.pop("base", None)
        if isinstance(base, str):
            path = Path(base) if folder is None or Path(base).is_absolute() else folder / base
            base = load_base_config(str(path))
        elif isinstance(base, dict):
            base = BaseConfig.from_dict(base, source=f"{source} base")
        else:
            raise ConfigError(f"{source}: base must be a base config mapping or the path of a base YAML, "
                              f"but got {base!r}")
        space = {name: KnobSpec.from_dict(name, spec) for name, spec in (d.pop("space", None) or {}).items()}
        sub = {"pruner": PrunerConfig, "proxy": ProxyConfig, "final": FinalConfig, "pbt": PbtConfig}
        for key, kind in sub.items():
            raw = d.get(key) or {}
            if not isinstance(raw, dict):
                raise ConfigError(f"{source}: {key} must be a mapping, but got {raw!r}")
            names = {f.name for f in dataclasses.fields(kind)}
            bad = sorted(set(raw) - names)
            if bad:
                raise ConfigError(f"{source}: unknown {key} key(s) {bad}; valid keys are {sorted(names)}")
            d[key] = kind(**raw)
        try:
            return cls(base=base, space=space, **d)
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from None


def load_tune_config(path: str | Path) -> TuneConfig:
    """Read and validate a tune YAML (a relative ``base:`` path is read beside it)."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read tune config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"tune config {path} is not valid YAML: {exc}") from None
    return TuneConfig.from_dict(raw or {}, source=f"tune config {path}", folder=path.parent)


def save_tune_config(config: TuneConfig, path: Path) -> None:
    import yaml

    from edgetune._io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def saturated_proxy(values: list[float], config: TuneConfig, what: str = "complete trials") -> str | None:
    """A warning when the proxy cannot rank recipes: at least 3 values and 80 % of them tie (e.g.
    every short proxy run left at dev WER 1.0, all blanks), else None."""
    vals = [round(float(v), 9) for v in values]
    if len(vals) < 3:
        return None
    top = max(set(vals), key=vals.count)
    if vals.count(top) < 0.8 * len(vals):
        return None
    fix = ("use metric: dev_loss, which still ranks models that emit only blanks, or " if config.metric == "wer"
           else "use ")
    return (f"{vals.count(top)} of {len(vals)} {what} have the same dev {config.metric} {top:.4f}: the proxy "
            f"({config.proxy_epochs} epochs on {config.proxy.data_fraction:g} of train) is too short to rank "
            f"recipes, so the best is an arbitrary tie; {fix}more proxy epochs or data")
