"""Import heavy dependencies lazily: optional ones with an error that names the fix (:func:`require`),
a package's own heavy modules on first use of a name (:func:`lazy_getattr`)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Callable, Mapping

from edgetune.errors import EdgetuneError


def require(module: str, *, extra: str | None = None, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise an EdgetuneError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        pkg = module.split(".")[0].replace("_", "-")
        fix = f"pip install 'edgetune[{extra}]'" if extra else f"pip install {pkg}"
        why = f" (needed for {purpose})" if purpose else ""
        raise EdgetuneError(f"could not import {module!r}{why}: {exc}. Fix: {fix}") from exc


def lazy_getattr(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that imports ``names[name]`` (a module path) on first use.

    Keeps ``import edgetune.<stage>`` light: ``__getattr__ = lazy_getattr(__name__, _LAZY)``.
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
