"""The study: a typed config, a search space of knob specs, and the resumable Optuna loop.

Public API::

    from edgetune.search import load_config, run_study, SimulatedRunner
    summary = run_study(load_config("configs/smoke.yaml"), "studies/smoke")

Importing this package is light (no optuna, torch or plotting import until a study runs).
"""

from edgetune._storage import mask_url, sqlalchemy_url
from edgetune.search._config import (
    CONFIG_VERSION,
    BenchConfig,
    ReportConfig,
    SamplerConfig,
    SamplerName,
    StudyConfig,
    config_from_yaml,
    config_to_yaml,
    load_config,
    save_config,
)
from edgetune.search._metrics import METRICS, Budget, Metric, metric_values
from edgetune.search._samplers import SamplerKind, get_sampler, make_sampler, register_sampler, samplers
from edgetune.search._simulated import SimulatedRunner
from edgetune.search._space import DOMAINS, Choice, Fixed, FloatRange, KeyConfigError, KnobDomain, KnobSpec, SearchSpace
from edgetune.search._storage import StudyPaths, load_study_dir, open_study
from edgetune.search._config import SchedulerConfig
from edgetune.search._study import StudySummary, TrialScheduler, run_study
from edgetune.search._table import ReplayRun, TableRunner
from edgetune.search._trials import front_numbers, is_finished, is_interrupted, recover_interrupted
from edgetune.search._workers import WorkersRun, pin_this_process, run_workers

__all__ = [
    "CONFIG_VERSION",
    "DOMAINS",
    "METRICS",
    "BenchConfig",
    "Budget",
    "Choice",
    "Fixed",
    "FloatRange",
    "KeyConfigError",
    "KnobDomain",
    "KnobSpec",
    "Metric",
    "ReplayRun",
    "ReportConfig",
    "SamplerConfig",
    "SamplerKind",
    "SamplerName",
    "SchedulerConfig",
    "SearchSpace",
    "SimulatedRunner",
    "StudyConfig",
    "StudyPaths",
    "StudySummary",
    "TableRunner",
    "TrialScheduler",
    "WorkersRun",
    "config_from_yaml",
    "config_to_yaml",
    "front_numbers",
    "get_sampler",
    "is_finished",
    "is_interrupted",
    "load_config",
    "load_study_dir",
    "make_sampler",
    "mask_url",
    "metric_values",
    "open_study",
    "pin_this_process",
    "recover_interrupted",
    "register_sampler",
    "run_study",
    "run_workers",
    "samplers",
    "save_config",
    "sqlalchemy_url",
]
