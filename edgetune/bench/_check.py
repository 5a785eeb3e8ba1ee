"""``edgetune check``: latency/size/WER budgets and statistical regression checks, JUnit output.

Budgets file (YAML), one mapping per target; ``defaults`` applies to every target and
``"*"`` matches any target without its own entry. A target also matches its entry written
without the query string (``ssh://ci@board?identity=...`` uses ``ssh://ci@board``)::

    defaults:
      noise_floor_pct: 3      # regression must exceed this (percent), see _stats.py
    local:
      p90_ms: 2.0
      p99_ms: 4.0
      rtf: 0.05
      size_bytes: 2000000
      wer: 0.25               # applies only when the results file has a "wer" field
      wer_delta: 0.005        # device WER - host WER on the same file and features (bench --wer)
    "ssh://ci@pi5":
      p90_ms: 30

Results: a bench JSON (``edgetune bench --json``; with ``--wer`` its ``wer`` is the WER decoded on
the device, ``wer_delta`` that minus the host's) or a candidate ``result.json`` holding a ``wer``
field and the bench result at top level or under ``bench`` / ``latency``.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetune._io import atomic_write
from edgetune._metrics import CHECK_LIMITS, CheckBudget
from edgetune.errors import ConfigError, DataError

# limit key -> unit for messages; read from the results by Results.metric (one vocabulary: edgetune._metrics)
LIMIT_KEYS = CHECK_LIMITS
SETTING_KEYS = ("noise_floor_pct", "confidence", "regression_on", "bootstrap_resamples", "seed", "min_effect_pct",
                "detect_pct", "reference_slope")
VALID_KEYS = tuple(LIMIT_KEYS) + SETTING_KEYS
DEFAULT_NOISE_FLOOR_PCT = 5.0
DEFAULT_REGRESSION_ON = ("p50", "p90")
# run-level modes (stored baseline of several runs, history): calibrated in benchmarks/bench_gate.py
DEFAULT_RUN_REGRESSION_ON = ("p50",)
DEFAULT_MIN_EFFECT_PCT = 5.0
DEFAULT_DETECT_PCT = 10.0
EXIT_NOISY = 3


@dataclass
class Outcome:
    """One check: a JUnit testcase. ``status`` is pass, fail, skip or noisy (too noisy to gate)."""

    name: str
    status: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Results:
    """A results file reduced to what checks need."""

    path: str
    target: str | None
    bench: dict[str, Any] | None  # the bench_model dict, when present
    wer: float | None
    size_bytes: int | None

    def metric(self, key: str) -> float | None:
        b = self.bench or {}
        lat = b.get("latency_ms") or {}
        if key.endswith("_ms") and key[:-3] in lat:
            return lat[key[:-3]]
        if key == "wer":
            return self.wer
        if key == "size_bytes":
            return self.size_bytes
        return b.get(key)

    @property
    def samples(self) -> list[float] | None:
        s = (self.bench or {}).get("samples_ms")
        return s if s else None

    @property
    def rounds(self) -> int:
        return int((self.bench or {}).get("rounds") or 1)

    @property
    def reference_samples(self) -> list[float] | None:
        return ((self.bench or {}).get("reference") or {}).get("samples_ms") or None

    def run_values(self, stat: str, normalized: bool) -> list[float]:
        """One value per run (bench round): its ``stat``, over the reference's p50 when ``normalized``."""
        from edgetune.bench._gate import round_values

        if not self.samples:
            raise DataError(f"{self.path} has no latency samples ('samples_ms'); a regression check needs the "
                            f"samples that `edgetune bench --json` writes")
        try:
            return list(round_values(self.samples, self.rounds, stat,
                                     self.reference_samples if normalized else None))
        except ValueError as exc:
            raise DataError(f"{self.path}: {exc}") from None

    def run_reference(self) -> list[float]:
        """The host-speed reference's p50 per run (bench --reference), aligned with :meth:`run_values`."""
        from edgetune.bench._gate import round_values

        if not self.reference_samples:
            raise DataError(f"{self.path} has no reference samples; bench it with --reference")
        try:
            return list(round_values(self.reference_samples, self.rounds, "p50"))
        except ValueError as exc:
            raise DataError(f"{self.path}: {exc}") from None

    def stability(self) -> dict[str, Any] | None:
        """The bench result's stability score, or one computed from its samples."""
        from edgetune.bench._gate import stability

        if (self.bench or {}).get("stability"):
            return self.bench["stability"]
        if not self.samples:
            return None
        normalized = self.reference_samples is not None
        return {**stability(self.run_values("p50", normalized), self.samples), "normalized": normalized}


# ----------------------------------------------------------------------------- loading


def load_results(path: str | os.PathLike) -> Results:
    """Read a bench JSON or a candidate result.json (DataError naming the file when it is neither)."""
    data = _read_json(path)
    bench = None
    if isinstance(data.get("latency_ms"), dict):
        bench = data
    else:
        for key in ("bench", "latency", "benchmark"):
            if isinstance(data.get(key), dict) and isinstance(data[key].get("latency_ms"), dict):
                bench = data[key]
                break
    wer = data.get("wer", (data.get("metrics") or {}).get("wer") if isinstance(data.get("metrics"), dict) else None)
    if bench is None and wer is None:
        raise DataError(f"{path}: neither a bench result (no 'latency_ms') nor a candidate result.json (no 'wer'); "
                        f"pass the file written by `edgetune bench --json` or `edgetune candidate`")
    size = (bench or {}).get("size_bytes", data.get("size_bytes"))
    target = (bench or {}).get("target", data.get("target"))
    return Results(str(path), target, bench, None if wer is None else float(wer), size)


def _read_json(path: str | os.PathLike) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DataError(f"results file {str(path)!r} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"results file {str(path)!r} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"results file {str(path)!r} must hold a JSON object, but holds {type(data).__name__}")
    return data


def load_budgets(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read and validate a budgets YAML file: {target: {key: value}} (ConfigError naming file and key)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"budgets file {str(path)!r} does not exist") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"budgets file {str(path)!r} is not readable YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"budgets file {str(path)!r} must map target names to budgets, e.g. 'local: {{p90_ms: 5}}'")
    data.pop("version", None)
    budgets: dict[str, dict[str, Any]] = {}
    for target, entry in data.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: budgets for {target!r} must be a mapping like {{p90_ms: 5}}, but got {entry!r}")
        for key, value in entry.items():
            _validate_budget(path, str(target), str(key), value)
        budgets[str(target)] = dict(entry)
    return budgets


def _validate_budget(path, target: str, key: str, value: Any) -> None:
    where = f"{path}: {target}.{key}"
    if key not in VALID_KEYS:
        raise ConfigError(f"{path}: unknown budget key {key!r} under {target!r}; valid keys: {', '.join(VALID_KEYS)}")
    if key == "regression_on":
        from edgetune.bench._stats import STATS

        if not isinstance(value, list) or not value or any(v not in STATS for v in value):
            raise ConfigError(f"{where} must be a non-empty list of {', '.join(STATS)}, but got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, but got {value!r}")
    if key == "confidence" and not 0.5 < value < 1.0:
        raise ConfigError(f"{where} must be in (0.5, 1), e.g. 0.95, but got {value!r}")
    if key == "reference_slope" and not 0 <= value <= 2:
        raise ConfigError(f"{where} must be in [0, 2] (1 divides by the reference, 0 ignores it; leave it out to "
                          f"fit it on the baseline's runs), but got {value!r}")
    if key == "bootstrap_resamples" and (int(value) != value or value < 100):
        raise ConfigError(f"{where} must be an integer >= 100, but got {value!r}")
    if key != "seed" and value < 0:
        raise ConfigError(f"{where} must be >= 0, but got {value!r}")


def budgets_for(budgets: dict[str, dict[str, Any]], target: str | None, path: str = "budgets") -> dict[str, Any]:
    """The budgets that apply to ``target``: ``defaults`` overlaid by its own entry (or ``"*"``)."""
    merged = dict(budgets.get("defaults", {}))
    candidates = [target, target.split("?", 1)[0]] if target else []
    for name in [*candidates, "*"]:
        if name and name in budgets:
            merged.update(budgets[name])
            return merged
    named = sorted(k for k in budgets if k != "defaults")
    raise ConfigError(f"{path}: no budgets for target {target!r} (entries: {', '.join(named) or 'none'}); add an "
                      f"entry for it or a '*' entry for any target")


# ----------------------------------------------------------------------------- checks


def check_budgets(results: Results, budget: dict[str, Any]) -> list[Outcome]:
    """One outcome per limit key: value <= limit passes; a metric the results lack is skipped."""
    out = []
    for key, unit in LIMIT_KEYS.items():
        if key not in budget:
            continue
        rule = CheckBudget(key, "<=", float(budget[key]))
        limit = rule.bound
        value = results.metric(key)
        name = f"{rule}{unit}"
        if value is None:
            why = (f"no '{key}' field (bench without --wer DATASET, or a test set without references)"
                   if key.startswith("wer") else f"the results have no {key}")
            out.append(Outcome(name, "skip", why))
            continue
        details, extra = {"value": value}, ""
        dev = (results.bench or {}).get("device_wer") if key.startswith("wer") else None
        if dev:
            details.update({k: dev.get(k) for k in ("wer", "wer_host", "wer_delta", "utterances",
                                                    "transcripts_differ", "target", "features_digest")})
            extra = (f" (WER on the device {dev['wer']:.6g}, on the host {dev['wer_host']:.6g}, same file and "
                     f"features; {dev['transcripts_differ']} of {dev['utterances']} transcripts differ)")
        if rule.satisfied(value):
            out.append(Outcome(name, "pass", f"{key} = {value:.6g}{unit} <= {limit:g}{unit}{extra}", details))
        else:
            over = f"by {100 * (value - limit) / limit:.1f}%" if limit > 0 else f"by {value - limit:.6g}"
            out.append(Outcome(name, "fail", f"{key} = {value:.6g}{unit} exceeds the budget {limit:g}{unit} "
                                             f"{over}{extra}", details))
    return out


def check_regression(results: Results, baseline: Results, budget: dict[str, Any],
                     aa: tuple[Results, Results] | None = None) -> list[Outcome]:
    """Bootstrap comparison per statistic in ``regression_on`` against the baseline's samples."""
    from edgetune.bench._stats import bootstrap_relative_diff, noise_floor_from_aa, verdict

    for r in (results, baseline, *(aa or ())):
        if not r.samples or len(r.samples) < 2:
            raise DataError(f"{r.path} has no latency samples ('samples_ms'); a regression check needs the "
                            f"samples that `edgetune bench --json` writes")
    confidence = float(budget.get("confidence", 0.95))
    n_boot = int(budget.get("bootstrap_resamples", 2000))
    seed = int(budget.get("seed", 0))
    out = []
    for stat in budget.get("regression_on", DEFAULT_REGRESSION_ON):
        floors = {}
        if "noise_floor_pct" in budget:
            floors["budgets"] = float(budget["noise_floor_pct"])
        if aa:
            floors["aa"] = noise_floor_from_aa(aa[0].samples, aa[1].samples, stat, n_boot=n_boot,
                                               confidence=confidence, seed=seed, **pairing(aa[0], aa[1]))
        floor = max(floors.values()) if floors else DEFAULT_NOISE_FLOOR_PCT
        source = max(floors, key=floors.get) if floors else "default"
        cmp = bootstrap_relative_diff(baseline.samples, results.samples, stat, n_boot=n_boot,
                                      confidence=confidence, seed=seed, **pairing(baseline, results))
        v = verdict(cmp, floor)
        method = f"{'paired ' if cmp.paired else ''}block {cmp.block}"
        msg = (f"{stat} {cmp.baseline:.4g} -> {cmp.candidate:.4g} ms: {cmp.diff_pct:+.2f}% ({method}) "
               f"[{100 * confidence:g}% CI {cmp.ci_low_pct:+.2f}%, {cmp.ci_high_pct:+.2f}%], "
               f"noise floor {floor:.2f}% ({source}) -> {v}")
        details = {**cmp.to_dict(), "noise_floor_pct": floor, "noise_floor_source": source, "verdict": v}
        out.append(Outcome(f"no {stat} regression vs baseline", "fail" if v == "regression" else "pass", msg, details))
    return out


def _run_settings(budget: dict[str, Any]) -> dict[str, Any]:
    return {"min_effect_pct": float(budget.get("min_effect_pct", DEFAULT_MIN_EFFECT_PCT)),
            "detect_pct": float(budget.get("detect_pct", DEFAULT_DETECT_PCT)),
            "confidence": float(budget.get("confidence", 0.95))}


def _outcome(name: str, verdict: str, msg: str, details: dict[str, Any]) -> Outcome:
    status = {"regression": "fail", "noisy": "noisy"}.get(verdict, "pass")
    return Outcome(name, status, ("too noisy to gate: " if status == "noisy" else "") + msg, details)


def _slope_setting(budget: dict[str, Any]) -> float | None:
    return None if budget.get("reference_slope") is None else float(budget["reference_slope"])


def _unit(slope: float | None, whose: str) -> str:
    return "ms" if slope is None else f"ms at the {whose}'s host speed (reference slope {slope:.2f})"


def check_stored_baseline(results: Results, baselines: list[Results], budget: dict[str, Any]) -> list[Outcome]:
    """Stored-baseline mode: the candidate's runs against the pooled runs of the baseline file(s).

    The baseline runs are the A/A noise model. When every file carries the host-speed reference
    (``bench --reference``), each run is adjusted to the baseline's host speed with the slope
    fitted on the baseline's runs (``_gate.reference_slope``; budgets ``reference_slope`` fixes
    it, 1 = divide by the reference), which removes the host's own drift.
    """
    from edgetune.bench._gate import compare_runs

    normalized = all(r.reference_samples for r in (results, *baselines))
    settings = _run_settings(budget)
    out = []
    for stat in budget.get("regression_on", DEFAULT_RUN_REGRESSION_ON):
        base = [v for b in baselines for v in b.run_values(stat, False)]
        cand = results.run_values(stat, False)
        refs: dict[str, Any] = {}
        if normalized:
            refs = {"baseline_reference": [v for b in baselines for v in b.run_reference()],
                    "candidate_reference": results.run_reference(),
                    "baseline_groups": [i for i, b in enumerate(baselines) for _ in range(b.rounds)],
                    "slope": _slope_setting(budget)}
        c = compare_runs(base, cand, stat, n_boot=int(budget.get("bootstrap_resamples", 2000)),
                         seed=int(budget.get("seed", 0)), **refs, **settings)
        unit = _unit(c.reference_slope, "baseline")
        msg = (f"{stat} {c.baseline:.4g} -> {c.candidate:.4g} {unit} over {c.runs[0]} -> {c.runs[1]} runs: "
               f"{c.diff_pct:+.2f}% [{100 * c.confidence:g}% bounds {c.ci_low_pct:+.2f}%, {c.ci_high_pct:+.2f}%], "
               f"min effect {c.min_effect_pct:g}%, detectable {c.detectable_pct:.1f}% (goal {c.detect_pct:g}%) "
               f"-> {c.verdict}")
        if c.verdict == "noisy":
            msg += (f"; these runs cannot detect a {c.detect_pct:g}% slowdown: bench more --rounds"
                    f"{'' if normalized else ' with --reference (baseline and results)'}, or use a quieter device")
        out.append(_outcome(f"no {stat} regression vs stored baseline", c.verdict, msg,
                            {**c.to_dict(), "mode": "stored-baseline", "normalized": normalized}))
    return out


def load_history(directory: str | os.PathLike, target: str | None) -> tuple[list[Results], list[str]]:
    """Bench results in ``directory`` (``*.json``, oldest first by ``created``, then name) for ``target``."""
    d = Path(directory)
    if not d.is_dir():
        raise DataError(f"history directory {str(d)!r} does not exist; pass the folder holding earlier "
                        f"main-branch `edgetune bench --json` results")
    found, warnings = [], []
    for path in sorted(d.glob("*.json")):
        r = load_results(path)
        if r.samples is None:
            warnings.append(f"{path}: no latency samples, left out of the history")
        elif r.target != target:
            warnings.append(f"{path}: target {r.target!r}, not {target!r}, left out of the history")
        else:
            found.append(r)
    found.sort(key=lambda r: ((r.bench or {}).get("created") or "", r.path))
    return found, warnings


def check_history(results: Results, history: list[Results], budget: dict[str, Any]) -> list[Outcome]:
    """History mode: change points in the main-branch series, then the new result vs the current regime."""
    import numpy as np

    from edgetune.bench._gate import adjust_runs, compare_to_history, reference_slope

    normalized = bool(history) and all(r.reference_samples for r in (results, *history))
    settings = _run_settings(budget)
    out = []
    for stat in budget.get("regression_on", DEFAULT_RUN_REGRESSION_ON):
        runs = [r.run_values(stat, False) for r in history]
        new_runs = results.run_values(stat, False)
        slope = None
        if normalized:  # every run at the history's median host speed, the slope fitted on the history's runs
            refs = [r.run_reference() for r in history]
            flat_refs = [v for rf in refs for v in rf]
            slope = _slope_setting(budget)
            if slope is None:
                slope = reference_slope([v for rv in runs for v in rv], flat_refs,
                                        [i for i, rv in enumerate(runs) for _ in rv])
            center = float(np.median(np.log(flat_refs)))
            runs = [adjust_runs(rv, rf, slope, center) for rv, rf in zip(runs, refs)]
            new_runs = adjust_runs(new_runs, results.run_reference(), slope, center)
        series = [float(np.median(rv)) for rv in runs]
        new = float(np.median(new_runs))
        c = compare_to_history(series, new, stat, **settings)
        unit = _unit(slope, "history")
        cps = ", ".join(f"#{i} ({Path(history[i].path).name})" for i in c.change_points) or "none"
        if c.regime_size < 4:
            msg = (f"{c.regime_size} result(s) since the last change point (of {c.history}); the history needs "
                   f">= 4 results of the current regime to gate")
        else:
            msg = (f"{stat} {c.regime:.4g} (median of the last {c.regime_size} of {c.history} results) -> "
                   f"{c.candidate:.4g} {unit}: {c.diff_pct:+.2f}%, p = {c.p_value:.3g}, min effect "
                   f"{c.min_effect_pct:g}%, detectable {c.detectable_pct:.1f}% (goal {c.detect_pct:g}%); "
                   f"change points in the history: {cps} -> {c.verdict}")
        out.append(_outcome(f"no {stat} regression vs history", c.verdict, msg,
                            {**c.to_dict(), "mode": "history", "normalized": normalized, "reference_slope": slope}))
    return out


@dataclass
class CheckReport:
    """What ``edgetune check`` found: one outcome per check, warnings, the results' target and stability."""

    outcomes: list[Outcome]
    warnings: list[str]
    target: str | None
    stability: dict[str, Any] | None = None
    device_wer: dict[str, Any] | None = None  # bench --wer: device and host WER, differing transcripts

    @property
    def failed(self) -> int:
        return sum(o.status == "fail" for o in self.outcomes)

    @property
    def noisy(self) -> int:
        return sum(o.status == "noisy" for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        """0 pass, 1 a budget or regression failed, 3 nothing failed but a gate was too noisy to decide."""
        return 1 if self.failed else EXIT_NOISY if self.noisy else 0


def pairing(a: Results, b: Results) -> dict[str, Any]:
    """Bootstrap settings for two results: paired blocks when both come from one interleaved job
    (``bench_models`` block mode, same block size and sample count), else unpaired blocks."""
    from edgetune.bench._stats import default_block

    ia, ib = (a.bench or {}).get("interleave") or {}, (b.bench or {}).get("interleave") or {}
    if (ia.get("mode") == "block" and ia.get("job") and ia.get("job") == ib.get("job")
            and ia.get("block") == ib.get("block") and len(a.samples) == len(b.samples)
            and len(a.samples) // int(ia["block"]) >= 2):
        return {"block": int(ia["block"]), "paired": True}
    return {"block": default_block(min(len(a.samples), len(b.samples))), "paired": False}


def _device_warnings(results: Results, others: list[Results]) -> list[str]:
    warnings = []
    for other in others:
        if other.target != results.target:
            warnings.append(f"{other.path} was measured on target {other.target!r}, the results on "
                            f"{results.target!r}: compare runs from the same device")
        cpu_a = ((other.bench or {}).get("fingerprint") or {}).get("cpu_model")
        cpu_b = ((results.bench or {}).get("fingerprint") or {}).get("cpu_model")
        if cpu_a and cpu_b and cpu_a != cpu_b:
            warnings.append(f"{other.path} ran on CPU {cpu_a!r}, the results on {cpu_b!r}")
    return warnings


def run_check(results_path: str, budgets_path: str | None = None, baseline_path: str | list[str] | None = None,
              aa_paths: tuple[str, str] | None = None, history_dir: str | None = None) -> CheckReport:
    """Every check for one results file. Raises EdgetuneError (exit 2) on bad input.

    Against a baseline: the same-job paired test when both files come from one interleaved
    job, or when the baseline holds a single run; the stored-baseline run test when the
    baseline file(s) hold >= 2 runs in all. Against ``history_dir``: change-point detection.
    """
    if budgets_path is None and baseline_path is None and history_dir is None:
        raise ConfigError("nothing to check: pass --budgets FILE, --baseline FILE and/or --history DIR")
    results = load_results(results_path)
    warnings: list[str] = []
    budget: dict[str, Any] = {}
    outcomes: list[Outcome] = []
    if budgets_path is not None:
        budget = budgets_for(load_budgets(budgets_path), results.target, str(budgets_path))
        outcomes += check_budgets(results, budget)
    if baseline_path is not None:
        paths = [baseline_path] if isinstance(baseline_path, (str, os.PathLike)) else list(baseline_path)
        baselines = [load_results(p) for p in paths]
        aa = (load_results(aa_paths[0]), load_results(aa_paths[1])) if aa_paths else None
        warnings += _device_warnings(results, [*baselines, *(aa or ())])
        for r in (results, *baselines):
            if not r.samples or len(r.samples) < 2:
                raise DataError(f"{r.path} has no latency samples ('samples_ms'); a regression check needs the "
                                f"samples that `edgetune bench --json` writes")
        if aa and len(baselines) > 1:
            raise ConfigError("--aa measures a noise floor for one --baseline file; with several baseline runs the "
                              "runs themselves are the noise model: drop --aa")
        same_job = len(baselines) == 1 and pairing(baselines[0], results)["paired"]
        if same_job or sum(b.rounds for b in baselines) < 2 or aa:
            if not same_job:
                warnings.append("the baseline holds one run: between-run noise is unmeasured, so this gate may "
                                "pass or fail at random on a noisy host; store a baseline of several runs "
                                "(`edgetune bench --rounds 10 --reference`) or bench both in one job")
            outcomes += check_regression(results, baselines[0], budget, aa)
        else:
            if not all(r.reference_samples for r in (results, *baselines)):
                warnings.append("not normalized by the host-speed reference (bench without --reference): "
                                "a change of the host's speed between jobs reads as a change of the model")
            outcomes += check_stored_baseline(results, baselines, budget)
    if history_dir is not None:
        history, notes = load_history(history_dir, results.target)
        warnings += notes + _device_warnings(results, history[-1:])
        outcomes += check_history(results, history, budget)
    dev = (results.bench or {}).get("device_wer")
    keys = ("wer", "wer_host", "wer_delta", "utterances", "transcripts_differ")
    summary = {k: dev.get(k) for k in keys} if dev else None
    return CheckReport(outcomes, warnings, results.target, results.stability(), summary)


# ----------------------------------------------------------------------------- JUnit


def write_junit(path: str | os.PathLike, outcomes: list[Outcome], *, suite: str = "edgetune check",
                classname: str = "edgetune.check", properties: dict[str, Any] | None = None) -> None:
    """JUnit XML (stdlib xml.etree), one testcase per check; written atomically."""
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(outcomes)),
                       failures=str(sum(o.status == "fail" for o in outcomes)), errors="0",
                       skipped=str(sum(o.status in ("skip", "noisy") for o in outcomes)))
    if properties:
        props = ET.SubElement(ts, "properties")
        for k, v in properties.items():
            ET.SubElement(props, "property", name=str(k), value="" if v is None else str(v))
    for o in outcomes:
        case = ET.SubElement(ts, "testcase", classname=classname, name=o.name)
        if o.status == "fail":
            ET.SubElement(case, "failure", message=o.message, type="budget" if "regression" not in o.name
                          else "regression").text = json.dumps(o.details, sort_keys=True) if o.details else o.message
        elif o.status in ("skip", "noisy"):
            ET.SubElement(case, "skipped", message=o.message, type=o.status)
        else:
            ET.SubElement(case, "system-out").text = o.message
    atomic_write(path, lambda tmp: ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True))
