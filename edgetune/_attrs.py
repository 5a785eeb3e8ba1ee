"""The one set of Optuna attribute keys, at the bottom of the import chain.

The study loop (``edgetune.search``) writes them, the scheduler (``edgetune.schedulers``) and
the report (``edgetune.report``) read them; each imports the names from here, so none has to
import another's private modules to agree on a string. A runner's own result keys (``wer``,
``latency_ms``, ...) are stored beside these on each trial.
"""

from __future__ import annotations

# ---- trial user attributes, written by the study loop --------------------------------------
ATTR_WORKER = "worker"
ATTR_ARTIFACT = "artifact"
ATTR_SHA = "sha256"
ATTR_FAIL = "fail_reason"
ATTR_FAIL_TYPE = "fail_type"
ATTR_INTERRUPTED = "interrupted"
ATTR_RETRY_OF = "retry_of"
ATTR_BASELINE = "baseline"
ATTR_DUPLICATE = "duplicate_of"
ATTR_CLAIMED = "training"  # set when a trial decides to train its knobs itself
ATTR_INFRA = "infrastructure_error"  # why a trial was cut short by the machine, not the candidate (retried)

# ---- multi-fidelity: latency-first rejection and MO-ASHA ---------------------------------------
PRECHECK_ATTR = "precheck"  # the untrained measurement (written by the loop, read by MOASHA)
REJECTED_ATTR = "rejected_by_budget"  # an untrained candidate already over a latency/size budget
RUNG_ATTR = "rung_{}"  # the dev WER a trial reported at rung ``n``
STOPPED_AT_RUNG_ATTR = "stopped_at_rung"
STOPPED_AT_EPOCH_ATTR = "stopped_at_epoch"
ATTR_STOPPED = STOPPED_AT_RUNG_ATTR

# ---- study user attributes ---------------------------------------------------------------------
CONFIG_ATTR = "edgetune_config"  # the study's config, saved beside its trials
RUNNER_ATTR = "edgetune_runner"  # which kind of runner a study's results come from
MOASHA_ATTR = "moasha"  # the MO-ASHA settings a study was started with

__all__ = [
    "ATTR_ARTIFACT",
    "ATTR_BASELINE",
    "ATTR_CLAIMED",
    "ATTR_DUPLICATE",
    "ATTR_FAIL",
    "ATTR_FAIL_TYPE",
    "ATTR_INFRA",
    "ATTR_INTERRUPTED",
    "ATTR_RETRY_OF",
    "ATTR_SHA",
    "ATTR_STOPPED",
    "ATTR_WORKER",
    "CONFIG_ATTR",
    "MOASHA_ATTR",
    "PRECHECK_ATTR",
    "REJECTED_ATTR",
    "RUNG_ATTR",
    "RUNNER_ATTR",
    "STOPPED_AT_EPOCH_ATTR",
    "STOPPED_AT_RUNG_ATTR",
]
