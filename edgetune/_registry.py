"""One registry of named entries, shared by every extension point (transports, runners, model
families, samplers, schedulers, report formats).

Each axis keeps its own entry type, its own rule for a valid name and its own ``register_*`` /
``get_*`` functions; what they share lives here: entries kept in registration order,
re-registering a name replaces it, and an unknown name raises the error the axis builds from
the name asked for and the names registered (so it can list the valid ones). Pure Python,
imports nothing from edgetune.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")

#: ``(name asked for, registered names) -> the exception to raise``
Unknown = Callable[[Any, list[str]], Exception]


class Registry(Generic[T]):
    """Entries of type ``T`` by name, in registration order.

    ``unknown(name, names)`` builds the error :meth:`get` raises for a name not registered
    (a name that is not a string is never registered)."""

    def __init__(self, unknown: Unknown):
        self._entries: dict[str, T] = {}
        self._unknown = unknown

    def register(self, name: str, entry: T) -> T:
        """Keep ``entry`` under ``name`` (replacing any entry of that name) and return it."""
        self._entries[name] = entry
        return entry

    def get(self, name: Any) -> T:
        """The entry ``name``; the axis's unknown-name error when there is none."""
        entry = self._entries.get(name) if isinstance(name, str) else None
        if entry is None:
            raise self._unknown(name, self.names())
        return entry

    def pop(self, name: str) -> T:
        """Remove the entry ``name`` and return it (KeyError when absent), e.g. after a test."""
        return self._entries.pop(name)

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._entries)

    def values(self) -> list[T]:
        """The registered entries, in registration order."""
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries


__all__ = ["Registry", "Unknown"]
