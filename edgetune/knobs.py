"""The knobs of one candidate, and the training settings (fidelity) it is trained at.

Typed, frozen, validated in ``__post_init__`` and round-tripping through plain dicts, so a
candidate's settings can be written to ``result.json``, ONNX ``metadata_props`` and YAML.
Pure Python: no torch import.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any

from edgetune.errors import ConfigError

BITS = (4, 8, 16, 32)
SUBSAMPLING = 4  # encoder frame = 4 feature frames
FRAME_SHIFT_MS = 10  # feature hop: 160 samples at 16 kHz
CHUNK_QUANTUM_MS = SUBSAMPLING * FRAME_SHIFT_MS  # chunk_ms must be a multiple of this


class Observer(str, Enum):
    """Activation range observer used by quantization-aware training."""

    MINMAX = "minmax"
    MOVING_AVERAGE = "moving_average"


class PruneSchedule(str, Enum):
    """How structured sparsity is reached: all at once, or in steps during training."""

    ONESHOT = "oneshot"
    GRADUAL = "gradual"


def _check_choice(name: str, value: Any, enum: type[Enum]) -> Enum:
    try:
        return enum(value)
    except ValueError:
        valid = ", ".join(repr(e.value) for e in enum)
        raise ConfigError(f"{name} must be one of {valid}, but got {value!r}") from None


def _check_range(name: str, value: Any, low: float, high: float, fix: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number in [{low}, {high}], but got {value!r}")
    if not low <= value <= high:
        extra = f" {fix}" if fix else ""
        raise ConfigError(f"{name} must satisfy {low} <= {name} <= {high}, but got {value!r}.{extra}")
    return value


@dataclass(frozen=True)
class Knobs:
    """One point of the search space: what decides speed on a device, plus training knobs.

    ``bits`` is the weight width: 4 and 8 are integer (activations then int8), 16 is an
    fp16 export, 32 is float. ``depth_multiplier`` scales every width (MobileNet style);
    values above 1.0 are allowed for benchmarking larger models, the search space stops at 1.0.
    """

    bits: int = 8
    sparsity: float = 0.0
    depth_multiplier: float = 1.0
    chunk_ms: int = 320
    observer: Observer = Observer.MOVING_AVERAGE
    lr: float = 3e-3
    specaugment: bool = True
    prune_schedule: PruneSchedule = PruneSchedule.ONESHOT

    def __post_init__(self) -> None:
        if self.bits not in BITS or isinstance(self.bits, bool):
            raise ConfigError(f"bits must be one of {BITS}, but got {self.bits!r}")
        _check_range("sparsity", self.sparsity, 0.0, 0.9)
        _check_range("depth_multiplier", self.depth_multiplier, 0.125, 4.0)
        if isinstance(self.chunk_ms, bool) or not isinstance(self.chunk_ms, int):
            raise ConfigError(f"chunk_ms must be an integer number of milliseconds, but got {self.chunk_ms!r}")
        _check_range("chunk_ms", self.chunk_ms, CHUNK_QUANTUM_MS, 5120)
        if self.chunk_ms % CHUNK_QUANTUM_MS:
            lo = self.chunk_ms - self.chunk_ms % CHUNK_QUANTUM_MS
            raise ConfigError(
                f"chunk_ms must be a multiple of {CHUNK_QUANTUM_MS} ms (4 feature frames of 10 ms), "
                f"but got {self.chunk_ms}. Fix: use {max(lo, CHUNK_QUANTUM_MS)} or {lo + CHUNK_QUANTUM_MS}"
            )
        object.__setattr__(self, "observer", _check_choice("observer", self.observer, Observer))
        object.__setattr__(
            self, "prune_schedule", _check_choice("prune_schedule", self.prune_schedule, PruneSchedule)
        )
        _check_range("lr", self.lr, 1e-6, 1.0)
        if not isinstance(self.specaugment, bool):
            raise ConfigError(f"specaugment must be true or false, but got {self.specaugment!r}")

    @property
    def is_integer(self) -> bool:
        """True for 4- and 8-bit candidates, whose weights and activations are quantized."""
        return self.bits in (4, 8)

    @property
    def chunk_frames(self) -> int:
        """Feature frames (10 ms each) per streaming chunk."""
        return self.chunk_ms // FRAME_SHIFT_MS

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["observer"] = self.observer.value
        d["prune_schedule"] = self.prune_schedule.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Knobs":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown knob(s) {unknown}; valid knobs are {sorted(known)}")
        return cls(**d)


@dataclass(frozen=True)
class TrainSettings:
    """Fidelity and reproducibility of training. Not searched; fixed per study.

    ``epochs`` counts passes over the training split. QAT fake-quant is switched on for
    the last ``qat_fraction`` of them (integer candidates only); pruning happens at
    ``prune_at`` (fraction of training) followed by fine-tuning for the rest.
    """

    epochs: int = 8
    batch_size: int = 16
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    qat_fraction: float = 0.4
    prune_at: float = 0.4
    num_threads: int = 0  # torch CPU threads for training; 0 = torch default

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"epochs must be an integer >= 1, but got {self.epochs!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, but got {self.batch_size!r}")
        _check_range("qat_fraction", self.qat_fraction, 0.0, 1.0)
        _check_range("prune_at", self.prune_at, 0.0, 0.95)
        dev = str(self.device)
        if not (dev in ("auto", "cpu", "cuda") or dev.startswith("cuda:")):
            raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', but got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainSettings":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s) {unknown}; valid ones are {sorted(known)}")
        return cls(**d)
