"""One YAML file describes a whole study: typed, frozen, validated up front, saved beside it.

Every error names the key path (``space.sparsity.high``), the value and the fix; a config
read from a file also names the file and line. Unknown keys are errors that list the valid
keys, so a typo never silently falls back to a default.

Example (``configs/smoke.yaml`` is a full one)::

    version: 1
    study_name: smoke
    n_trials: 12
    dataset: smoke
    space:
      bits: [8, 32]
      sparsity: {low: 0.0, high: 0.6, step: 0.1}
    objectives: [wer, latency_ms, size_bytes]
    budgets: ["latency_ms <= 400"]
    sampler: {name: nsga2, population_size: 6, enqueue_baseline: true}
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

from edgetune._storage import mask_url
from edgetune.errors import ConfigError
from edgetune.knobs import TrainSettings
from edgetune.search._metrics import METRICS, Budget, check_objectives
from edgetune.search._space import KeyConfigError, SearchSpace, _as_number

CONFIG_VERSION = 1
#: Keys that may change when a study is resumed (everything else must match the saved config).
RESUMABLE_KEYS = ("n_trials",)


class SamplerName(str, Enum):
    """Which sampler drives the study: a built-in one, or one registered with
    :func:`edgetune.search.register_sampler` (``SamplerName("mine")`` then gives a member that
    is not listed here but has ``.value == "mine"``)."""

    NSGA2 = "nsga2"
    NSGA3 = "nsga3"
    TPE = "tpe"
    GP = "gp"
    RANDOM = "random"
    GRID = "grid"

    @classmethod
    def _missing_(cls, value: object) -> "SamplerName | None":
        from edgetune.search._samplers import samplers

        if not isinstance(value, str) or value not in samplers():
            return None
        member = str.__new__(cls, value)  # a pseudo-member, as enum.Flag makes them
        member._name_, member._value_ = value.upper(), value
        return cls._value2member_map_.setdefault(value, member)


def _check_keys(d: Any, valid: list[str], path: str) -> Mapping[str, Any]:
    if d is None:
        return {}
    if not isinstance(d, Mapping):
        raise KeyConfigError(path, f"must be a mapping with keys {', '.join(valid)}, but got {d!r}")
    unknown = sorted(set(d) - set(valid))
    if unknown:
        where = path or "the top level"
        raise KeyConfigError(
            f"{path}.{unknown[0]}" if path else unknown[0],
            f"unknown key(s) {unknown} in {where}; valid keys are {', '.join(valid)}",
        )
    return d


def _int(path: str, v: Any, low: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise KeyConfigError(path, f"must be an integer, but got {v!r}")
    if low is not None and v < low:
        raise KeyConfigError(path, f"must be >= {low}, but got {v}")
    return v


@dataclass(frozen=True)
class BenchConfig:
    """How latency is measured on the target (passed to ``run_candidate``)."""

    threads: int = 1
    runs: int = 200
    warmup: int = 20

    def __post_init__(self) -> None:
        _int("bench.threads", self.threads, 1)
        _int("bench.runs", self.runs, 1)
        _int("bench.warmup", self.warmup, 0)


@dataclass(frozen=True)
class SamplerConfig:
    """The sampler and its few settings. ``enqueue_baseline`` queues the uncompressed model first;
    ``enqueue`` lists more knob settings to try next, before the sampler decides (e.g. the int8
    model at full width a team ships today)."""

    name: SamplerName = SamplerName.NSGA2
    population_size: int = 16
    n_startup_trials: int = 10
    enqueue_baseline: bool = True
    enqueue: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        from edgetune.search._samplers import get_sampler

        get_sampler(self.name)  # KeyConfigError listing the registered samplers
        object.__setattr__(self, "name", SamplerName(getattr(self.name, "value", self.name)))
        _int("sampler.population_size", self.population_size, 2)
        _int("sampler.n_startup_trials", self.n_startup_trials, 0)
        if not isinstance(self.enqueue_baseline, bool):
            raise KeyConfigError("sampler.enqueue_baseline", f"must be true or false, but got {self.enqueue_baseline!r}")
        enqueue = self.enqueue or ()
        if isinstance(enqueue, Mapping) or not all(isinstance(e, Mapping) for e in enqueue):
            raise KeyConfigError("sampler.enqueue", f"must be a list of knob mappings like [{{bits: 8}}], got {enqueue!r}")
        object.__setattr__(self, "enqueue", tuple(dict(e) for e in enqueue))


@dataclass(frozen=True)
class SchedulerConfig:
    """Multi-fidelity early stopping. ``moasha``: a trial continues past a rung epoch
    (``min_epochs * eta**k`` below ``train.epochs``) only if it is among the top ``1/eta`` of the
    trials recorded there by non-dominated sorting. ``none``: every trial trains fully. Other
    names: schedulers registered with :func:`edgetune.schedulers.register_scheduler`."""

    name: str = "none"
    min_epochs: int = 1
    eta: int = 3
    min_peers: int | None = None

    def __post_init__(self) -> None:
        from edgetune.schedulers._registry import schedulers

        if self.name not in schedulers():
            raise KeyConfigError("scheduler.name", f"must be one of {', '.join(schedulers())}, but got {self.name!r}")
        _int("scheduler.min_epochs", self.min_epochs, 1)
        _int("scheduler.eta", self.eta, 2)
        if self.min_peers is not None:
            _int("scheduler.min_peers", self.min_peers, 1)


@dataclass(frozen=True)
class ReportConfig:
    """Report settings. ``reference_point`` (objective -> value) fixes the hypervolume reference;
    when absent the report derives one from the trials and declares it."""

    reference_point: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if self.reference_point is None:
            return
        if not isinstance(self.reference_point, Mapping):
            raise KeyConfigError("report.reference_point", f"must map objective -> number, got {self.reference_point!r}")
        clean = {}
        for k, v in self.reference_point.items():
            v = float(_as_number(f"report.reference_point.{k}", v))  # YAML reads 5.0e6 as a string
            if not math.isfinite(v):
                raise KeyConfigError(f"report.reference_point.{k}", f"must be a finite number, got {v!r}")
            clean[str(k)] = v
        object.__setattr__(self, "reference_point", clean)


@dataclass(frozen=True)
class BaseSection:
    """``base:``: the trained model every trial is derived from. Exactly one of

    - ``path``: a base directory (``models/demo``, or one made by ``edgetune base train``);
    - ``checkpoint`` + ``family`` (+ ``model_config``): a team's own weights for a registered family
      (safetensors, or a torch file read with ``weights_only=True``), imported into ``<study>/base``;
    - ``train``: a base config mapping (as in ``edgetune base train``), trained once into
      ``<study>/base`` as stage 0 and reused by every trial and worker.

    ``init``: ``base`` (derive: prune, QAT fine-tune with distillation) or ``scratch`` (train
    from random initialisation, for comparison). ``distill``: the KL term's weight in the
    fine-tuning loss (0 turns distillation off); ``distill_temperature`` its temperature.
    """

    path: str | None = None
    checkpoint: str | None = None
    family: str | None = None
    model_config: dict[str, Any] | None = None
    train: dict[str, Any] | None = None
    init: str = "base"
    distill: float = 0.5
    distill_temperature: float = 1.0

    def __post_init__(self) -> None:
        given = [k for k in ("path", "checkpoint", "train") if getattr(self, k) is not None]
        if len(given) != 1:
            raise KeyConfigError("base", f"needs exactly one of path, checkpoint or train, but got {given or 'none'}. "
                                         "Fix: e.g. base: {path: models/demo}")
        for key in ("path", "checkpoint"):
            v = getattr(self, key)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise KeyConfigError(f"base.{key}", f"must be a path, but got {v!r}")
        if self.checkpoint is not None:
            if not self.family:
                raise KeyConfigError("base.family", "a checkpoint needs the registered family it belongs to")
            from edgetune.model import get_family

            try:
                get_family(self.family).make_config(self.model_config or {})
            except ConfigError as exc:
                raise KeyConfigError("base.model_config" if "config key" in str(exc) else "base.family",
                                     str(exc)) from None
        if self.train is not None:
            from edgetune.base import BaseConfig

            try:
                BaseConfig.from_dict(self.train, source="base.train")
            except (ConfigError, TypeError) as exc:
                raise KeyConfigError("base.train", str(exc)) from None
        if self.init not in ("base", "scratch"):
            raise KeyConfigError("base.init", f"must be 'base' or 'scratch', but got {self.init!r}")
        w = _as_number("base.distill", self.distill)
        if not 0.0 <= float(w) <= 1.0:
            raise KeyConfigError("base.distill", f"must be a weight in [0, 1], but got {self.distill!r}")
        t = _as_number("base.distill_temperature", self.distill_temperature)
        if not float(t) > 0:
            raise KeyConfigError("base.distill_temperature", f"must be > 0, but got {self.distill_temperature!r}")
        object.__setattr__(self, "distill", float(w))
        object.__setattr__(self, "distill_temperature", float(t))


def _train_from_dict(d: Any) -> TrainSettings:
    valid = [f.name for f in dataclasses.fields(TrainSettings)]
    d = _check_keys(d, valid, "train")
    try:
        return TrainSettings(**d)
    except ConfigError as exc:
        msg = str(exc)
        key = next((k for k in valid if msg.startswith(k + " ")), "")
        raise KeyConfigError(f"train.{key}" if key else "train", msg) from None


@dataclass(frozen=True)
class StudyConfig:
    """A whole study. ``from_dict``/``to_dict`` round-trip; ``load_config`` reads YAML."""

    study_name: str = "edgetune"
    n_trials: int = 20
    seed: int = 0
    dataset: str = "smoke"
    family: str = "conformer_lite"
    space: SearchSpace = field(default_factory=lambda: SearchSpace.from_dict(None))
    train: TrainSettings = field(default_factory=TrainSettings)
    objectives: tuple[str, ...] = ("wer", "latency_ms")
    budgets: tuple[Budget, ...] = ()
    target: tuple[str, ...] = ("local",)
    bench: BenchConfig = field(default_factory=BenchConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    storage: str | None = None
    report: ReportConfig = field(default_factory=ReportConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    precheck: bool = False
    base: BaseSection | None = None
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        if self.version != CONFIG_VERSION:
            raise KeyConfigError(
                "version", f"this edgetune reads config version {CONFIG_VERSION}, but got {self.version!r}"
            )
        if not isinstance(self.study_name, str) or not self.study_name.strip():
            raise KeyConfigError("study_name", f"must be a non-empty string, got {self.study_name!r}")
        _int("n_trials", self.n_trials, 1)
        _int("seed", self.seed, 0)
        for key in ("dataset", "family"):
            v = getattr(self, key)
            if not isinstance(v, str) or not v.strip():
                raise KeyConfigError(key, f"must be a non-empty string (a preset name or a path), got {v!r}")
        object.__setattr__(self, "objectives", check_objectives(self.objectives))
        targets = (self.target,) if isinstance(self.target, str) else tuple(self.target)
        if not targets:
            raise KeyConfigError("target", "needs at least one target, e.g. local")
        from edgetune.bench._transport import parse_target  # pure parsing, connects to nothing
        from edgetune.errors import TargetError

        for i, t in enumerate(targets):
            where = "target" if len(targets) == 1 else f"target[{i}]"
            if not isinstance(t, str) or not t.strip() or any(c.isspace() for c in t):
                raise KeyConfigError(where, f"must be a target like 'local', 'ssh://user@host' or 'adb://SERIAL', got {t!r}")
            try:
                parse_target(t)
            except TargetError as exc:
                raise KeyConfigError(where, str(exc)) from None
        object.__setattr__(self, "target", targets)
        object.__setattr__(self, "budgets", tuple(self.budgets))
        names = [b.name for b in self.budgets]
        if len(set(names)) != len(names):
            raise KeyConfigError("budgets", f"a metric is budgeted twice in the same direction: {[str(b) for b in self.budgets]}")
        if self.storage is not None and (not isinstance(self.storage, str) or not self.storage.strip()):
            raise KeyConfigError("storage", f"must be an Optuna storage URL or absent, got {self.storage!r}")
        ref = self.report.reference_point
        if ref is not None and set(ref) != set(self.objectives):
            raise KeyConfigError(
                "report.reference_point",
                f"needs exactly one value per objective {list(self.objectives)}, got keys {sorted(ref)}",
            )
        from edgetune.schedulers._registry import get_scheduler

        if "min_epochs" in get_scheduler(self.scheduler.name).options and self.scheduler.min_epochs >= self.train.epochs:
            raise KeyConfigError(
                "scheduler.min_epochs",
                f"the first rung ({self.scheduler.min_epochs}) must come before the last epoch "
                f"(train.epochs = {self.train.epochs}), or no trial is ever judged. Fix: lower min_epochs "
                "or raise train.epochs",
            )
        if not isinstance(self.precheck, bool):
            raise KeyConfigError("precheck", f"must be true or false, but got {self.precheck!r}")
        if self.precheck and not any(METRICS[b.metric].role != "accuracy" for b in self.budgets):
            raise KeyConfigError(
                "precheck",
                "latency-first rejection needs a latency or size budget (e.g. budgets: ['latency_ms <= 300']). "
                "Fix: add one, or set precheck: false",
            )
        for i, params in enumerate(self.sampler.enqueue):
            unknown = sorted(set(params) - set(self.space.searched))
            if unknown:
                raise KeyConfigError(f"sampler.enqueue[{i}]", f"names knob(s) {unknown} that the space does not search "
                                                              f"(searched: {self.space.searched})")
            if not self.space.contains(params):
                raise KeyConfigError(f"sampler.enqueue[{i}]", f"{params} lies outside the search space")
        from edgetune.search._samplers import get_sampler

        check = get_sampler(self.sampler.name).check  # e.g. the grid sampler needs a finite space
        if check is not None:
            check(self)

    @property
    def directions(self) -> list[str]:
        return ["minimize"] * len(self.objectives)

    @property
    def primary_target(self) -> str:
        """The target whose measurements are the objectives; others only constrain (later)."""
        return self.target[0]

    # ---- dict / YAML round trip -------------------------------------------------------

    def to_dict(self, *, mask: bool = False) -> dict[str, Any]:
        """Plain data in the YAML layout (``from_dict(to_dict())`` is equal to ``self``).

        ``mask=True`` hides a password in ``storage`` (for files and study attributes)."""
        d: dict[str, Any] = {
            "version": self.version,
            "study_name": self.study_name,
            "n_trials": self.n_trials,
            "seed": self.seed,
            "dataset": self.dataset,
            "family": self.family,
            "space": self.space.to_dict(),
            "train": self.train.to_dict(),
            "objectives": list(self.objectives),
            "budgets": [str(b) for b in self.budgets],
            "target": self.target[0] if len(self.target) == 1 else list(self.target),
            "bench": dataclasses.asdict(self.bench),
            "sampler": {**dataclasses.asdict(self.sampler), "name": self.sampler.name.value,
                        "enqueue": [dict(e) for e in self.sampler.enqueue]},
            "storage": mask_url(self.storage) if (mask and self.storage) else self.storage,
            "report": {"reference_point": dict(self.report.reference_point) if self.report.reference_point else None},
            "scheduler": dataclasses.asdict(self.scheduler),
            "precheck": self.precheck,
        }
        if self.base is not None:
            d["base"] = {k: v for k, v in dataclasses.asdict(self.base).items() if v is not None}
        return d

    @classmethod
    def from_dict(cls, d: Any) -> "StudyConfig":
        valid = [f.name for f in dataclasses.fields(cls)]
        d = dict(_check_keys(d, valid, ""))
        nested = ("space", "train", "budgets", "bench", "sampler", "report", "scheduler", "base")
        kw: dict[str, Any] = {k: v for k, v in d.items() if k not in nested}
        kw["space"] = SearchSpace.from_dict(d.get("space"))
        kw["train"] = _train_from_dict(d.get("train"))
        budgets = d.get("budgets") or []
        if isinstance(budgets, (str, Mapping)):
            budgets = [budgets] if isinstance(budgets, str) else [{k: v} for k, v in budgets.items()]
        if not isinstance(budgets, list):
            raise KeyConfigError("budgets", f"must be a list like ['latency_ms <= 20'], got {budgets!r}")
        kw["budgets"] = tuple(Budget.parse(b, f"budgets[{i}]") for i, b in enumerate(budgets))
        kw["bench"] = BenchConfig(**_check_keys(d.get("bench"), [f.name for f in dataclasses.fields(BenchConfig)], "bench"))
        kw["sampler"] = SamplerConfig(
            **_check_keys(d.get("sampler"), [f.name for f in dataclasses.fields(SamplerConfig)], "sampler")
        )
        kw["report"] = ReportConfig(**_check_keys(d.get("report"), ["reference_point"], "report"))
        kw["scheduler"] = SchedulerConfig(
            **_check_keys(d.get("scheduler"), [f.name for f in dataclasses.fields(SchedulerConfig)], "scheduler")
        )
        if d.get("base") is not None:
            kw["base"] = BaseSection(**_check_keys(d["base"], [f.name for f in dataclasses.fields(BaseSection)], "base"))
        if "target" in kw and kw["target"] is None:
            del kw["target"]
        return cls(**kw)

    def replace(self, **changes: Any) -> "StudyConfig":
        return dataclasses.replace(self, **changes)

    def diff(self, other: "StudyConfig", ignore: tuple[str, ...] = RESUMABLE_KEYS) -> list[str]:
        """Human-readable differences ``key: self -> other``, skipping ``ignore`` keys."""
        a, b = _flatten(self.to_dict(mask=True)), _flatten(other.to_dict(mask=True))
        out = []
        for key in sorted(set(a) | set(b)):
            if key.split(".")[0].split("[")[0] in ignore:
                continue
            if a.get(key, "<absent>") != b.get(key, "<absent>"):
                out.append(f"{key}: {a.get(key, '<absent>')!r} -> {b.get(key, '<absent>')!r}")
        return out


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, Mapping):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    return {prefix: d}


def check_config_inputs(config: "StudyConfig") -> None:
    """What ``__post_init__`` cannot check from the values alone, checked before a study (also a
    ``--simulate`` one) is created: the model family is registered, the dataset is a preset or a
    readable dataset folder, and no latency budget is below the smallest chunk's algorithmic
    latency. Raises KeyConfigError naming the key. Not in ``__post_init__``, so a saved study
    whose dataset moved can still be reported and exported."""
    from edgetune.data._datasets import check_dataset_spec
    from edgetune.errors import DataError
    from edgetune.model import get_family

    try:
        get_family(config.family)
    except ConfigError as exc:
        raise KeyConfigError("family", f"{exc}. Fix: use one of those, or register yours first") from None
    try:
        check_dataset_spec(config.dataset)
    except DataError as exc:
        raise KeyConfigError("dataset", str(exc)) from None
    base = config.base
    if base is not None and base.path is not None and not Path(base.path).expanduser().is_dir():
        raise KeyConfigError("base.path", f"{base.path!r} is not a directory. Fix: point it at a base directory "
                                          "(models/demo) or train one with `edgetune base train`")
    if base is not None and base.checkpoint is not None and not Path(base.checkpoint).expanduser().is_file():
        raise KeyConfigError("base.checkpoint", f"{base.checkpoint!r} does not exist")
    smallest_chunk = min(config.space.specs["chunk_ms"].grid_values())
    for i, b in enumerate(config.budgets):
        if b.metric == "latency_ms" and b.op == "<=" and b.bound < smallest_chunk:
            raise KeyConfigError(
                f"budgets[{i}]",
                f"budget '{b}' can never be met: latency_ms includes the algorithmic latency (the chunk, "
                f"at least {smallest_chunk} ms in space.chunk_ms) on top of the compute time. Fix: raise the "
                f"bound above {smallest_chunk} ms, add smaller chunks to space.chunk_ms, or budget "
                f"compute_p90_ms instead",
            )


# ---- YAML files ----------------------------------------------------------------------


def _line_map(text: str) -> dict[str, int]:
    """Key path -> 1-based line, for error messages."""
    import yaml

    out: dict[str, int] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                path = f"{prefix}.{k.value}" if prefix else str(k.value)
                out[path] = k.start_mark.line + 1
                walk(v, path)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                path = f"{prefix}[{i}]"
                out[path] = item.start_mark.line + 1
                walk(item, path)

    try:
        walk(yaml.compose(text, Loader=yaml.SafeLoader), "")
    except yaml.YAMLError:
        pass
    return out


def config_from_yaml(text: str, source: str = "<string>") -> StudyConfig:
    """Parse and validate a study config; errors name ``source``, the line and the key path."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}. Fix the syntax at that line") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a study config is a YAML mapping (key: value lines), got {type(data).__name__}")
    try:
        return StudyConfig.from_dict(data)
    except KeyConfigError as exc:
        lines = _line_map(text)
        path = exc.path
        while path and path not in lines:
            path = path.rsplit(".", 1)[0] if "." in path else (path.rsplit("[", 1)[0] if "[" in path else "")
        where = f"{source}:{lines[path]}" if path in lines else source
        raise KeyConfigError(exc.path, f"{exc.detail} (in {where})") from None


def load_config(path: str | Path) -> StudyConfig:
    """Read a study config file (errors name the file)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read study config {p}: {exc.strerror or exc}. Fix: check the --config path") from None
    return config_from_yaml(text, str(p))


def config_to_yaml(config: StudyConfig) -> str:
    import yaml

    header = "# edgetune study config (saved beside the results; edit n_trials to extend a study)\n"
    return header + yaml.safe_dump(config.to_dict(mask=True), sort_keys=False, default_flow_style=None)


def save_config(config: StudyConfig, path: str | Path) -> None:
    """Write atomically (temp file + rename)."""
    from edgetune._io import atomic_write_text

    atomic_write_text(Path(path), config_to_yaml(config))


__all__ = [
    "BenchConfig",
    "CONFIG_VERSION",
    "METRICS",
    "ReportConfig",
    "SamplerConfig",
    "SamplerName",
    "SchedulerConfig",
    "StudyConfig",
    "check_config_inputs",
    "config_from_yaml",
    "config_to_yaml",
    "load_config",
    "mask_url",
    "save_config",
]
