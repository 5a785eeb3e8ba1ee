"""Model families: a registry pairing a config dataclass with a builder, keyed by name.

Like lhotse's ``@register_extractor``: adding a family means writing a config dataclass, a
builder ``(config, knobs) -> StreamingCTCModel`` and one :func:`register_family` call; the
pipeline, trainer and exporter only talk to :class:`edgetune.model.base.StreamingCTCModel`.

Pure Python (no torch import): builders are referenced as ``"module:function"`` strings and
imported when a model is built, so ``import edgetune.model`` stays light.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgetune._registry import Registry
from edgetune.errors import ConfigError
from edgetune.knobs import Knobs

if TYPE_CHECKING:
    from edgetune.model.base import StreamingCTCModel


@dataclass(frozen=True)
class ModelFamily:
    """One registered family: its name, config type and builder (callable or ``"module:function"``)."""

    name: str
    config_type: type
    builder: str | Callable[..., Any]

    def make_config(self, overrides: dict[str, Any] | None = None) -> Any:
        """The family's config with ``overrides`` applied; unknown keys name the valid ones."""
        overrides = dict(overrides or {})
        known = {f.name for f in dataclasses.fields(self.config_type)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"unknown model config key(s) {unknown} for family {self.name!r}; valid keys are {sorted(known)}"
            )
        return self.config_type(**overrides)

    def resolve_builder(self) -> Callable[..., Any]:
        if callable(self.builder):
            return self.builder
        module, _, attr = self.builder.partition(":")
        return getattr(importlib.import_module(module), attr)


_FAMILIES: Registry[ModelFamily] = Registry(
    lambda name, names: ConfigError(f"unknown model family {name!r}; registered families are {sorted(names)}"))


def register_family(name: str, config_type: type, builder: str | Callable[..., Any]) -> ModelFamily:
    """Register a model family under ``name`` (re-registering a name replaces it)."""
    if not dataclasses.is_dataclass(config_type):
        raise TypeError(f"config_type of family {name!r} must be a dataclass, got {config_type!r}")
    return _FAMILIES.register(name, ModelFamily(name, config_type, builder))


def get_family(name: str) -> ModelFamily:
    """The registered family ``name``; ConfigError listing the registered ones when unknown."""
    return _FAMILIES.get(name)


def families() -> list[str]:
    """Names of the registered model families."""
    return sorted(_FAMILIES.names())


def build_model(family: str, knobs: Knobs, overrides: dict[str, Any] | None = None) -> "StreamingCTCModel":
    """A fresh (untrained, float) model of ``family`` shaped by ``knobs`` (width, chunk)."""
    fam = get_family(family)
    config = fam.make_config(overrides)
    return fam.resolve_builder()(config, knobs)
