"""Shared file I/O, at the bottom of the import chain: the one atomic writer, sha256, JSON-safe data.

Every file edgetune writes goes through :func:`atomic_write`: the content is written to a temp
file beside the target, flushed to disk, then renamed over the target, so a reader (or a run
killed half-way) sees the old file or the new one, never half of one. The temp file is created
like any other file (mode ``0o666`` less the umask), so the result has the mode a plain
``open(path, "w")`` would give it. Imports nothing from edgetune: every layer may use it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable, Literal


def _temp_beside(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any], *, suffix: str = ".tmp") -> None:
    """Call ``write(tmp)`` with a fresh path beside ``path``, fsync it, then rename it over ``path``.

    For writers that open a file by name (``np.savez``, soundfile, onnx, safetensors,
    ElementTree). ``suffix`` ends the temp name, for writers that look at it (``np.savez``
    appends ``.npz`` to a name without it). On any error the temp file is removed and the
    target is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path, suffix)
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never half."""

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            f.write(data)

    atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8 (no newline translation)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy ``src`` to ``dst`` through a temp file beside ``dst``."""
    atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))


def replace_dir(tmp_dir: str | os.PathLike, final: str | os.PathLike) -> None:
    """Swap a fully written ``tmp_dir`` in as ``final`` (old content removed after the swap)."""
    final = Path(final)
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp_dir, final)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


NonFinite = Literal["keep", "null"]


def _nulled(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nulled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulled(v) for v in value]
    return value


def json_safe(value: Any, *, non_finite: NonFinite) -> Any:
    """``value`` as plain JSON data: what ``json.loads`` would give back after writing it.

    numpy scalars and arrays become numbers and lists, tuples lists, enums their value, dict
    keys strings, anything else its ``str``. NaN and +-inf are never silently dropped: each
    caller says what it needs.

    * ``non_finite="keep"``: they stay floats (``float("nan")``), for values a caller still checks
      with ``math.isfinite`` (a trial's objectives: a NaN WER is an error that names itself).
    * ``non_finite="null"``: they become ``None``, for files that must be strict JSON
      (``result.json``, model cards), which has no NaN.
    """
    if non_finite not in ("keep", "null"):
        raise ValueError(f"non_finite must be 'keep' or 'null', but got {non_finite!r}")

    def default(o: Any) -> Any:
        if hasattr(o, "tolist"):
            return o.tolist()
        if hasattr(o, "value"):
            return o.value
        return str(o)

    plain = json.loads(json.dumps(value, default=default, allow_nan=True))
    return _nulled(plain) if non_finite == "null" else plain


__all__ = [
    "atomic_copy",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "json_safe",
    "replace_dir",
    "sha256_file",
]
