"""Import heavy dependencies lazily: optional ones with an error that names the fix (:func:`require`,
:func:`missing_extra`), a package's own heavy modules on first use of a name (:func:`lazy_getattr`).

The light install (``pip install edgetune``: numpy, scipy, pyyaml, onnx, onnxruntime, soundfile,
jiwer, kaldi-native-fbank) runs ``edgetune bench``, ``check`` and ``transcribe``, as a CI runner or a board
does; everything else comes with an extra of ``pyproject.toml``, listed in :data:`EXTRAS`.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Callable, Mapping

from edgetune.errors import EdgetuneError


#: top-level module of each optional dependency -> the extra that installs it (``pip install 'edgetune[full]'``);
#: tests/test_lean_import.py checks it against pyproject.toml
EXTRAS = {
    **dict.fromkeys(["torch", "torchaudio", "onnxscript", "torch_pruning", "optuna", "pandas", "moocore", "plotly",
                     "matplotlib", "psutil", "safetensors", "rich", "espeakng_loader"], "full"),
    "sherpa_onnx": "ship",
    "psycopg2": "postgres",
    "syne_tune": "replay",
}


def missing_extra(exc: BaseException) -> str | None:
    """What to tell a user whose command failed with ``exc``, when it is a ModuleNotFoundError of an
    optional dependency (one of :data:`EXTRAS`): the module and the extra to install; else ``None``."""
    if not isinstance(exc, ModuleNotFoundError):
        return None
    module = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(module)
    if extra is None:
        return None
    light = " (the light install runs only bench, check and transcribe)" if extra == "full" else ""
    return (f"this command needs {module!r}, which is not installed{light}. "
            f"Fix: pip install 'edgetune[{extra}]'")


def require(module: str, *, extra: str | None = None, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise an EdgetuneError saying how to install it (``extra``: default from :data:`EXTRAS`)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        extra = extra or EXTRAS.get(module.split(".")[0])
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
