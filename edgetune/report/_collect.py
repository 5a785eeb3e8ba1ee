"""Everything a report shows, computed once from a study: the trial table, the front, the
hypervolume trace, parameter importances and failures. Renderers only read a :class:`ReportData`.
"""

from __future__ import annotations

import math
from pathlib import Path
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edgetune._attrs import ATTR_DUPLICATE, ATTR_RETRY_OF
from edgetune._pareto import derive_reference_point, hypervolume, hypervolume_history, pareto_front
from edgetune.knobs import Knobs
from edgetune.search._config import StudyConfig
from edgetune.search._metrics import METRICS, metric_values
from edgetune.search._trials import is_interrupted

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    import pandas as pd

KNOB_COLUMNS = [f for f in Knobs().to_dict()]
MIN_TRIALS_FOR_IMPORTANCE = 4

#: trials.csv column order (knob and metric columns are inserted where they belong)
BASE_COLUMNS = ["number", "state", "feasible", "pareto", "baseline"]
TAIL_COLUMNS = ["artifact", "sha256", "host", "train_seconds", "trial_seconds", "gpu_seconds", "gpu_energy_j", "duplicate_of", "retry_of", "retried_as",
                "stopped_at_rung", "fail_type", "fail_reason", "datetime_start", "datetime_complete"]
#: export fidelity (derived candidates): quant_cost = fake-quant PyTorch WER - the float base's WER,
#: export_error = the ONNX file's WER - the fake-quant PyTorch WER (same test set, same chunk)
FIDELITY_COLUMNS = ["wer_torch", "wer_base", "quant_cost", "export_error", "params", "init"]
METRIC_COLUMNS = ["wer", "worst_group_wer", "latency_ms", "compute_p50_ms", "compute_p90_ms", "compute_p99_ms",
                  "algorithmic_latency_ms", "rtf", "size_bytes", "gzip_bytes", "peak_rss_bytes"]


def _host_name(host: Any) -> str:
    if isinstance(host, dict):
        for key in ("hostname", "name", "host", "cpu_model", "machine"):
            if host.get(key):
                extra = host.get("cpu_model") if key != "cpu_model" else None
                return f"{host[key]} ({extra})" if extra else str(host[key])
        return ", ".join(f"{k}={v}" for k, v in list(host.items())[:3])
    return "" if host is None else str(host)


@dataclass
class ReportData:
    """The numbers behind every part of a report."""

    config: StudyConfig
    study_name: str
    table: "pd.DataFrame"  # one row per trial (trials.csv)
    objectives: list[str]
    front: list[int]  # trial numbers on the feasible front, sorted by the first objective
    reference_point: list[float] | None
    reference_source: str  # "config" | "derived ..." | "none"
    hypervolume: float
    hv_trace: list[tuple[int, float]]  # (trial number, HV of trials <= number)
    importances: dict[str, dict[str, float]]  # objective -> param -> importance
    importance_note: str
    failures: list[dict[str, Any]]  # {reason, type, count, trials}: failed, interrupted, rejected, stopped
    counts: dict[str, int] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)

    def front_table(self) -> "pd.DataFrame":
        t = self.table.set_index("number")
        return t.loc[self.front].reset_index() if self.front else t.iloc[0:0].reset_index()


def _row(t: Any, config: StudyConfig) -> dict[str, Any]:
    ua = t.user_attrs
    knobs = ua.get("knobs") or {}
    row: dict[str, Any] = {"number": t.number, "state": t.state.name}
    measured = metric_values(ua) if t.state.name == "COMPLETE" else {}
    cons = t.constraints
    row["feasible"] = bool(all(v <= 0 for v in cons.values())) if t.state.name == "COMPLETE" else None
    row["baseline"] = bool(ua.get("baseline", False))
    for name in METRIC_COLUMNS:
        row[name] = measured.get(name, math.nan) if name != "algorithmic_latency_ms" else ua.get(name, math.nan)
    for k in KNOB_COLUMNS:
        row[k] = knobs.get(k, t.params.get(k))
    for b in config.budgets:
        row[f"constraint_{b.name}"] = cons.get(b.name, math.nan)
    for name in FIDELITY_COLUMNS:
        row[name] = ua.get(name, math.nan) if t.state.name == "COMPLETE" else math.nan
    row["artifact"] = ua.get("artifact", "")
    row["sha256"] = ua.get("sha256", "")
    row["host"] = _host_name(ua.get("host"))
    row["train_seconds"] = ua.get("train_seconds", math.nan)
    row["trial_seconds"] = ua.get("trial_seconds", math.nan)
    # a duplicate reuses its original's result: it spent no GPU time of its own
    row["gpu_seconds"] = 0.0 if ua.get(ATTR_DUPLICATE) is not None else ua.get("gpu_seconds", math.nan)
    row["gpu_energy_j"] = math.nan if ua.get(ATTR_DUPLICATE) is not None else ua.get("gpu_energy_j", math.nan)
    row["retry_of"] = ua.get(ATTR_RETRY_OF)
    row["duplicate_of"] = ua.get(ATTR_DUPLICATE)
    row["stopped_at_rung"] = ua.get("stopped_at_rung")
    row["fail_type"] = ua.get("fail_type", "")
    row["fail_reason"] = ua.get("fail_reason", "")
    if t.state.name == "PRUNED":
        if ua.get("rejected_by_budget"):
            row["fail_type"], row["fail_reason"] = "Rejected before training", ua["rejected_by_budget"]
        else:
            row["fail_type"] = "Stopped early"
            row["fail_reason"] = (f"stopped by the scheduler at rung {ua.get('stopped_at_rung')} "
                                  f"(epoch {ua.get('stopped_at_epoch')})")
    if is_interrupted(t):
        row["fail_type"] = "Interrupted"
        row["fail_reason"] = row["fail_reason"] or "interrupted: the process stopped while this trial ran"
    row["datetime_start"] = t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else ""
    row["datetime_complete"] = t.datetime_complete.isoformat(timespec="seconds") if t.datetime_complete else ""
    return row


def _importances(study: "optuna.Study", config: StudyConfig, n_complete: int) -> tuple[dict, str]:
    """Parameter importance per objective, or an empty dict and the reason."""
    import optuna

    if not config.space.searched:
        return {}, "no knob is searched (every knob is fixed)"
    if n_complete < MIN_TRIALS_FOR_IMPORTANCE:
        return {}, f"needs at least {MIN_TRIALS_FOR_IMPORTANCE} complete trials, the study has {n_complete}"
    out: dict[str, dict[str, float]] = {}
    notes = []
    import warnings

    for i, name in enumerate(config.objectives):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PED-ANOVA's "low target values" reminder
                imp = optuna.importance.get_param_importances(study, target=lambda t, i=i: t.values[i])
            out[name] = {k: float(v) for k, v in imp.items()}
        except Exception as exc:  # optuna raises ValueError/RuntimeError for degenerate data
            notes.append(f"{name}: {type(exc).__name__}: {exc}")
    return out, "; ".join(notes)


def mark_sherpa_onnx(data: ReportData, study_dir: Path) -> None:
    """Fill the ``sherpa_onnx`` column of the front: ``yes`` when the model converts to the sherpa-onnx
    zipformer2_ctc layout (:func:`edgetune.export.sherpa.sherpa_exportable`), else ``no: why``;
    empty off the front. ``edgetune ship --front`` then decodes them in sherpa-onnx itself."""
    from edgetune.export.sherpa import sherpa_exportable

    verdicts: dict[int, str] = {}
    for r in data.table.loc[data.table["number"].isin(data.front)].itertuples():
        path = study_dir / str(r.artifact) if r.artifact else None
        if path is None or not path.is_file():
            verdicts[r.number] = "no: the model file is missing"
            continue
        why = sherpa_exportable(path)
        verdicts[r.number] = "yes" if why is None else f"no: {why}"
    data.table["sherpa_onnx"] = [verdicts.get(n, "") for n in data.table["number"]]


def collect(study: "optuna.Study", config: StudyConfig) -> ReportData:
    """Compute the report's numbers from ``study`` (any state mix: failed, infeasible, running)."""
    import pandas as pd

    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    rows = [_row(t, config) for t in trials]
    retried_as = {r["retry_of"]: r["number"] for r in rows if r["retry_of"] is not None}
    for r in rows:
        r["retried_as"] = retried_as.get(r["number"])
        if r["fail_type"] == "Interrupted" and r["retried_as"] is not None:
            r["fail_reason"] += f" (configuration retried as trial {r['retried_as']})"

    objectives = list(config.objectives)
    # a duplicate (same knobs, result reused) is represented by its original on the front
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.values and ATTR_DUPLICATE not in t.user_attrs]
    pts = np.array([t.values for t in complete], dtype=float).reshape(len(complete), len(objectives))
    feas = np.array([all(v <= 0 for v in t.constraints.values()) for t in complete], dtype=bool)
    front_idx = pareto_front(pts, feas) if len(complete) else np.array([], dtype=int)
    front = [complete[i].number for i in front_idx]
    on_front = set(front)
    for r in rows:
        r["pareto"] = r["number"] in on_front

    ref: list[float] | None = None
    source = "none: no feasible complete trial"
    if config.report.reference_point:
        ref = [config.report.reference_point[o] for o in objectives]
        source = "config (report.reference_point)"
    elif feas.any():
        ref = derive_reference_point(pts, feas).tolist()
        source = "derived: worst feasible value of each objective + 10% of its range"
    hv, trace = 0.0, []
    if ref is not None and len(complete):
        hv = hypervolume(pts, ref, feas)
        hist = hypervolume_history(pts, ref, feas)
        trace = [(t.number, float(h)) for t, h in zip(complete, hist)]

    importances, note = _importances(study, config, len(complete))

    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in rows:
        if r["state"] in ("FAIL", "PRUNED"):
            reason = r["fail_reason"].split(" (configuration retried")[0]
            if r["fail_type"] == "Stopped early":
                reason = "stopped by the scheduler (partial-fidelity result, not on the front)"
            groups[(r["fail_type"] or "Error", reason)].append(r["number"])
    failures = [
        {"type": k[0], "reason": k[1], "count": len(v), "trials": v}
        for k, v in sorted(groups.items(), key=lambda kv: -len(kv[1]))
    ]
    columns = BASE_COLUMNS + METRIC_COLUMNS + FIDELITY_COLUMNS + KNOB_COLUMNS + [f"constraint_{b.name}" for b in config.budgets] + TAIL_COLUMNS
    table = pd.DataFrame(rows, columns=columns)
    states = Counter(r["state"] for r in rows)
    counts = {
        "trials": len(rows),
        "complete": states.get("COMPLETE", 0),
        "feasible": int(feas.sum()),
        "failed": sum(1 for r in rows if r["state"] == "FAIL" and r["fail_type"] != "Interrupted"),
        "interrupted": sum(1 for r in rows if r["fail_type"] == "Interrupted"),
        "pruned": states.get("PRUNED", 0),
        "rejected": sum(1 for r in rows if r["fail_type"] == "Rejected before training"),
        "stopped": sum(1 for r in rows if r["fail_type"] == "Stopped early"),
        "running": states.get("RUNNING", 0) + states.get("WAITING", 0),
        "front": len(front),
    }
    hosts = sorted({r["host"] for r in rows if r["host"]})
    return ReportData(
        config=config,
        study_name=study.study_name,
        table=table,
        objectives=objectives,
        front=front,
        reference_point=ref,
        reference_source=source,
        hypervolume=hv,
        hv_trace=trace,
        importances=importances,
        importance_note=note,
        failures=failures,
        counts=counts,
        hosts=hosts,
    )


def metric_label(name: str) -> str:
    m = METRICS.get(name)
    if m is None:
        return name
    return f"{m.label} [{m.unit}]" if m.unit else m.label


__all__ = ["ReportData", "collect", "metric_label"]
