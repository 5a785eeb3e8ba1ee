"""Import heavy optional dependencies lazily, with an error that names the fix."""

from __future__ import annotations

import importlib
from types import ModuleType

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
