"""Contract test suites, one per extension point, to subclass per implementation (needs pytest).

* :class:`TransportContract`: a benchmark transport (``local``, ``ssh://``, ``adb://`` or one
  registered with :func:`edgetune.bench.register_transport`).
"""

from edgetune.testing._transport import HOSTILE, TransportContract

__all__ = ["HOSTILE", "TransportContract"]
