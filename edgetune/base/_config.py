"""The base model's config: what ``edgetune base train --config base.yaml`` reads (pure Python).

A base is trained once (width 1.0, fp32 weights, bf16 autocast on CUDA) with **dynamic
chunks**: each batch draws its attention chunk from ``chunks`` (plus full context when
``full_context``), so one set of weights serves every chunk size a trial exports at.

Model presets (measured parameter counts, conformer_lite, vocabulary 29):

=========  ===================================  ==========
preset     model_config                         parameters
=========  ===================================  ==========
``demo``   d_model 144, 7 layers, 4 heads        1.67 M     (the committed CPU demo base)
``5m``     d_model 256, 6 layers, 4 heads        4.46 M
``20m``    d_model 384, 12 layers, 6 heads       19.7 M
=========  ===================================  ==========
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from edgetune.errors import ConfigError
from edgetune.knobs import CHUNK_QUANTUM_MS

BASE_PRESETS: dict[str, dict[str, Any]] = {
    "demo": {"d_model": 144, "n_layers": 7, "n_heads": 4, "ff_mult": 2.0},
    "5m": {"d_model": 256, "n_layers": 6, "n_heads": 4, "ff_mult": 2.0},
    "20m": {"d_model": 384, "n_layers": 12, "n_heads": 6, "ff_mult": 2.0},
}


def _int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"base config {name} must be an integer >= {low}, but got {value!r}")
    return value


@dataclass(frozen=True)
class BaseTrainConfig:
    """How a base is trained. ``lr`` is the AdamW peak (warmup, then cosine).

    The recipe knobs below ``specaugment`` default to the trainer's constants
    (:mod:`edgetune.train.trainer`, :func:`edgetune.data.spec_augment`); ``edgetune base tune``
    searches them. At their defaults they are left out of :meth:`BaseConfig.to_dict`, so cards
    and checkpoints written before they existed still match.
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 3e-3
    seed: int = 0
    device: str = "auto"
    num_threads: int = 0
    specaugment: bool = True
    weight_decay: float = 1e-2
    warmup_fraction: float = 0.08
    grad_clip: float = 5.0
    freq_width: int = 15        # SpecAugment frequency-mask width (bins), 2 masks
    time_width: int = 25        # SpecAugment time-mask width (frames), 2 masks

    def __post_init__(self) -> None:
        _int("train.epochs", self.epochs, 1)
        _int("train.freq_width", self.freq_width, 1)
        _int("train.time_width", self.time_width, 1)
        for name, low, high in (("weight_decay", 0.0, 1.0), ("warmup_fraction", 0.0, 0.5), ("grad_clip", 1e-3, 1e3)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ConfigError(f"base config train.{name} must be in [{low}, {high}], but got {value!r}")
        _int("train.batch_size", self.batch_size, 1)
        _int("train.num_threads", self.num_threads, 0)
        if not 1e-6 <= float(self.lr) <= 1.0:
            raise ConfigError(f"base config train.lr must be in [1e-6, 1], but got {self.lr!r}")


@dataclass(frozen=True)
class BaseConfig:
    """One base model: family and architecture, data, dynamic-chunk set and training."""

    name: str = "base"
    family: str = "conformer_lite"
    preset: str | None = "demo"
    model_config: dict[str, Any] = field(default_factory=dict)
    dataset: str = "grid"
    chunks: tuple[int, ...] = (160, 320, 640, 1280)
    full_context: bool = True
    export_chunk_ms: int = 320
    eval_chunks: tuple[int, ...] = (160, 320, 640)
    train: BaseTrainConfig = field(default_factory=BaseTrainConfig)
    version: int = 1

    def __post_init__(self) -> None:
        if self.preset is not None and self.preset not in BASE_PRESETS:
            raise ConfigError(f"base config preset {self.preset!r} is unknown; valid presets are "
                              f"{sorted(BASE_PRESETS)} (or null with a full model_config)")
        if not isinstance(self.model_config, dict):
            raise ConfigError(f"base config model_config must be a mapping, but got {self.model_config!r}")
        object.__setattr__(self, "chunks", tuple(self.chunks))
        object.__setattr__(self, "eval_chunks", tuple(self.eval_chunks))
        for key in ("chunks", "eval_chunks"):
            values = getattr(self, key)
            if not values:
                raise ConfigError(f"base config {key} must list at least one chunk size in ms")
            for c in values:
                if isinstance(c, bool) or not isinstance(c, int) or c < CHUNK_QUANTUM_MS or c % CHUNK_QUANTUM_MS:
                    raise ConfigError(f"base config {key} entries must be multiples of {CHUNK_QUANTUM_MS} ms, "
                                      f"but got {c!r}")
        if self.export_chunk_ms not in self.eval_chunks:
            raise ConfigError(f"base config export_chunk_ms ({self.export_chunk_ms}) must be one of eval_chunks "
                              f"{list(self.eval_chunks)}")
        if self.version != 1:
            raise ConfigError(f"base config version must be 1, but got {self.version!r}")

    def resolved_model_config(self) -> dict[str, Any]:
        """The preset's architecture with ``model_config`` on top."""
        return {**(BASE_PRESETS[self.preset] if self.preset else {}), **self.model_config}

    def chunk_choices(self) -> list[int]:
        """What each batch draws its chunk from (0 = full context)."""
        return [*self.chunks, *([0] if self.full_context else [])]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["chunks"], d["eval_chunks"] = list(self.chunks), list(self.eval_chunks)
        for key in RECIPE_KEYS:  # at their defaults: the dict of a config from before they existed
            if d["train"][key] == getattr(_DEFAULT_TRAIN, key):
                del d["train"][key]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "base config") -> "BaseConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"{source} must be a mapping of keys, but got {type(d).__name__}")
        d = dict(d)
        d.pop("base", None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; valid keys are {sorted(known)}")
        train = d.pop("train", {}) or {}
        tknown = {f.name for f in dataclasses.fields(BaseTrainConfig)}
        tunknown = sorted(set(train) - tknown)
        if tunknown:
            raise ConfigError(f"{source}: unknown train key(s) {tunknown}; valid keys are {sorted(tknown)}")
        return cls(**d, train=BaseTrainConfig(**train))


#: training-recipe knobs added for tuning, omitted from ``to_dict`` at their defaults
RECIPE_KEYS = ("weight_decay", "warmup_fraction", "grad_clip", "freq_width", "time_width")
_DEFAULT_TRAIN = BaseTrainConfig()


def load_base_config(path: str) -> BaseConfig:
    """Read and validate a base YAML file (errors name the file and the key)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read base config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"base config {path} is not valid YAML: {exc}") from None
    try:
        return BaseConfig.from_dict(raw or {}, source=f"base config {path}")
    except TypeError as exc:
        raise ConfigError(f"base config {path}: {exc}") from None
