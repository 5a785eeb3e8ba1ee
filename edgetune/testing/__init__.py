"""Contract test suites, one per extension point, to subclass per implementation (needs pytest).

* :class:`TransportContract`: a benchmark transport (``local``, ``ssh://``, ``adb://`` or one
  registered with :func:`edgetune.bench.register_transport`).
* :class:`RendererContract`: a report format (``html``, ``markdown``, ``csv``, ``png`` or one
  registered with :func:`edgetune.report.register_renderer`).
* :class:`SamplerContract`: a study sampler (``nsga2``, ``tpe``, ... or one registered with
  :func:`edgetune.search.register_sampler`).
* :class:`SchedulerContract`: a multi-fidelity scheduler (``moasha`` or one registered with
  :func:`edgetune.schedulers.register_scheduler`).

Like optuna's ``testing/pytest_samplers.py``: a test module subclasses one and names the
implementation; every check of the suite then runs against it.
"""

from edgetune.testing._renderer import HOSTILE_NAME, HOSTILE_REASON, RendererContract
from edgetune.testing._sampler import SamplerContract
from edgetune.testing._scheduler import SchedulerContract
from edgetune.testing._transport import HOSTILE, TransportContract

__all__ = ["HOSTILE", "HOSTILE_NAME", "HOSTILE_REASON", "RendererContract", "SamplerContract", "SchedulerContract",
           "TransportContract"]
