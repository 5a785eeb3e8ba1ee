"""Moved to :mod:`edgetune._io` (the one home of the file helpers); kept so old imports work."""

from edgetune._io import atomic_copy, atomic_write_bytes, atomic_write_text, replace_dir, sha256_file

__all__ = ["atomic_copy", "atomic_write_bytes", "atomic_write_text", "replace_dir", "sha256_file"]
