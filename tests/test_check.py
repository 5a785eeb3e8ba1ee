"""``edgetune check``: the regression statistics, budgets files, exit codes, JUnit, and real models."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from edgetune.bench._check import budgets_for, check_budgets, load_budgets, load_results
from edgetune.bench._stats import bootstrap_relative_diff, noise_floor_from_aa, verdict
from edgetune.cli import main
from edgetune.errors import ConfigError


def lognormal(seed: int, n: int = 400, median: float = 2.0, sigma: float = 0.15) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(median), sigma, n)


# ----------------------------------------------------------------------------- statistics (pure)


def test_identical_samples_are_unchanged():
    a = lognormal(1)
    c = bootstrap_relative_diff(a, a.copy(), "p50")
    assert c.diff_pct == 0.0 and c.ci_low_pct <= 0.0 <= c.ci_high_pct and not c.significant
    assert verdict(c, 0.0) == "unchanged"


def test_same_distribution_passes_known_shift_is_detected():
    base = lognormal(1, n=2000)
    same = lognormal(2, n=2000)
    slower = lognormal(3, n=2000) * 1.10
    for stat in ("p50", "p90"):
        assert verdict(bootstrap_relative_diff(base, same, stat), 2.0) == "unchanged"
        c = bootstrap_relative_diff(base, slower, stat)
        assert c.significant and 5.0 < c.diff_pct < 15.0
        assert verdict(c, 2.0) == "regression"
        assert verdict(c, 20.0) == "unchanged"  # significant but below the noise floor
    assert verdict(bootstrap_relative_diff(base, lognormal(4) * 0.8), 2.0) == "improvement"


def test_bootstrap_is_seeded():
    a, b = lognormal(1), lognormal(2) * 1.03
    assert bootstrap_relative_diff(a, b, seed=7) == bootstrap_relative_diff(a, b, seed=7)
    assert bootstrap_relative_diff(a, b, seed=7) != bootstrap_relative_diff(a, b, seed=8)


def test_false_alarms_and_power_on_synthetic_pairs():
    """The interval is calibrated: A/A pairs rarely look significant, a 10% shift almost always does."""
    alarms = sum(verdict(bootstrap_relative_diff(lognormal(2 * i), lognormal(2 * i + 1), n_boot=500), 0.0)
                 == "regression" for i in range(100))
    hits = sum(verdict(bootstrap_relative_diff(lognormal(2 * i), lognormal(2 * i + 1) * 1.1, n_boot=500), 2.0)
               == "regression" for i in range(100))
    assert alarms <= 8 and hits >= 95


def test_noise_floor_from_aa_pair():
    floor = noise_floor_from_aa(lognormal(1, n=2000), lognormal(2, n=2000))
    assert 0.0 < floor < 5.0
    assert noise_floor_from_aa(lognormal(1, n=50), lognormal(2, n=50)) > floor  # fewer samples, wider


@pytest.mark.parametrize("bad", [([1.0], [1.0, 2.0]), ([[1.0, 2.0]], [1.0, 2.0])])
def test_bootstrap_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        bootstrap_relative_diff(*bad)


# ----------------------------------------------------------------------------- budgets and results files


def write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def bench_json(path: Path, samples, target="local", size=1000, **extra) -> Path:
    s = np.asarray(samples, dtype=float)
    lat = {"p50": float(np.percentile(s, 50)), "p90": float(np.percentile(s, 90)),
           "p99": float(np.percentile(s, 99)), "mean": float(s.mean()), "std": float(s.std())}
    return write(path, {"latency_ms": lat, "samples_ms": s.tolist(), "target": target, "size_bytes": size,
                        "rtf": lat["mean"] / 320, "fingerprint": {"cpu_model": "X"}, **extra})


def test_unknown_budget_key_names_it_and_lists_valid(tmp_path):
    p = write(tmp_path / "b.yaml", "local:\n  p95_ms: 3\n")
    with pytest.raises(ConfigError, match=r"'p95_ms'.*p90_ms, p99_ms") as e:
        load_budgets(p)
    assert "b.yaml" in str(e.value)
    for text, match in [("local:\n  p90_ms: fast\n", "must be a number"),
                        ("local:\n  confidence: 2\n", r"\(0.5, 1\)"),
                        ("local:\n  regression_on: [p75]\n", "p50, p90, p99"),
                        ("local: 3\n", "must be a mapping")]:
        with pytest.raises(ConfigError, match=match):
            load_budgets(write(tmp_path / "x.yaml", text))


def test_budget_target_matching(tmp_path):
    b = load_budgets(write(tmp_path / "b.yaml", "defaults: {noise_floor_pct: 4}\nlocal: {p90_ms: 2}\n"
                                                 "ssh://ci@pi: {p90_ms: 30}\n"))
    assert budgets_for(b, "local") == {"noise_floor_pct": 4, "p90_ms": 2}
    assert budgets_for(b, "ssh://ci@pi?identity=/k")["p90_ms"] == 30
    with pytest.raises(ConfigError, match=r"no budgets for target 'adb://X'.*local, ssh://ci@pi"):
        budgets_for(b, "adb://X")
    b["*"] = {"p90_ms": 9}
    assert budgets_for(b, "adb://X")["p90_ms"] == 9


def test_check_budgets_pass_fail_skip(tmp_path):
    r = load_results(bench_json(tmp_path / "r.json", [1.0, 2.0, 3.0, 4.0]))
    out = {o.name.split()[0]: o for o in check_budgets(r, {"p50_ms": 3, "p90_ms": 3, "size_bytes": 999, "wer": 0.2})}
    assert out["p50_ms"].status == "pass" and out["p90_ms"].status == "fail" and out["size_bytes"].status == "fail"
    assert out["wer"].status == "skip"


def test_check_and_study_budgets_share_one_type_and_parser():
    from edgetune._metrics import Budget, CheckBudget
    from edgetune.search import Budget as StudyBudget

    assert StudyBudget is Budget and issubclass(CheckBudget, Budget)
    rule = CheckBudget.parse("p90_ms <= 2", "local")  # the parser a study's `budgets:` goes through
    assert rule == CheckBudget("p90_ms", "<=", 2.0) and str(rule) == "p90_ms <= 2" and rule.unit == "ms"
    assert CheckBudget.parse({"wer": 0.25}) == CheckBudget("wer", "<=", 0.25)
    assert rule.satisfied(2.0) and not rule.satisfied(2.0001)
    assert CheckBudget("p90_ms", "<=", float("inf")).satisfied(1e9)  # a budgets file's .inf: no limit
    with pytest.raises(ConfigError, match=r"unknown metric 'latency_ms'.*p50_ms, p90_ms"):
        CheckBudget.parse("latency_ms <= 2")  # each kind names its own vocabulary
    with pytest.raises(ConfigError, match=r"unknown metric 'p90_ms'.*wer, worst_group_wer"):
        Budget.parse("p90_ms <= 2")
    with pytest.raises(ConfigError, match="compares with <=, but got '>='"):
        CheckBudget.parse("wer >= 0.1")


def test_candidate_result_json_with_wer(tmp_path):
    bench = json.loads(bench_json(tmp_path / "b.json", [1.0, 1.1, 1.2]).read_text())
    cand = write(tmp_path / "result.json", {"wer": 0.31, "bench": bench, "knobs": {"bits": 8}})
    budgets = write(tmp_path / "b.yaml", "local: {wer: 0.25, p90_ms: 5}\n")
    assert main(["check", "--results", str(cand), "--budgets", str(budgets)]) == 1
    write(budgets, "local: {wer: 0.35, p90_ms: 5}\n")
    assert main(["check", "--results", str(cand), "--budgets", str(budgets)]) == 0
    wer_only = write(tmp_path / "wer.json", {"wer": 0.1, "target": "local"})
    assert main(["check", "--results", str(wer_only), "--budgets", str(budgets)]) == 0


def test_exit_codes_and_junit(tmp_path):
    base = bench_json(tmp_path / "base.json", lognormal(1))
    slow = bench_json(tmp_path / "slow.json", lognormal(2) * 1.3)
    budgets = write(tmp_path / "b.yaml", "defaults: {noise_floor_pct: 5}\nlocal: {p90_ms: 100, size_bytes: 5000}\n")
    junit = tmp_path / "out" / "report.xml"
    assert main(["check", "--results", str(slow), "--budgets", str(budgets), "--baseline", str(base),
                 "--junit", str(junit)]) == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 4 and suite.get("failures") == "2"  # p90_ms, size pass; p50, p90 regress
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["no p50 regression vs baseline", "no p90 regression vs baseline"]
    assert cases[0].get("classname") == "edgetune.check.local"
    assert main(["check", "--results", str(base), "--budgets", str(budgets), "--baseline", str(base)]) == 0
    # usage / infrastructure errors: exit 2
    assert main(["check", "--results", str(tmp_path / "missing.json"), "--budgets", str(budgets)]) == 2
    assert main(["check", "--results", str(base)]) == 2
    nosamples = write(tmp_path / "ns.json", {**json.loads(base.read_text()), "samples_ms": []})
    assert main(["check", "--results", str(nosamples), "--baseline", str(base)]) == 2
    assert main(["check", "--results", str(base), "--budgets", str(write(tmp_path / "u.yaml", "local: {p1: 2}"))]) == 2


def test_aa_pair_sets_the_floor(tmp_path):
    base = bench_json(tmp_path / "base.json", lognormal(1, n=60, sigma=0.4))
    cand = bench_json(tmp_path / "cand.json", lognormal(2, n=60, sigma=0.4) * 1.15)
    a1 = bench_json(tmp_path / "a1.json", lognormal(3, n=60, sigma=0.4))
    a2 = bench_json(tmp_path / "a2.json", lognormal(4, n=60, sigma=0.4))
    from edgetune.bench._check import run_check

    budgets = write(tmp_path / "b.yaml", "local: {noise_floor_pct: 0}\n")
    plain = run_check(str(cand), str(budgets), str(base))
    with_aa = run_check(str(cand), str(budgets), str(base), (str(a1), str(a2)))
    floors = [o.details["noise_floor_pct"] for o in with_aa.outcomes]
    assert all(f > 0 for f in floors) and [o.details["noise_floor_source"] for o in with_aa.outcomes] == ["aa", "aa"]
    assert all(o.details["noise_floor_pct"] == 0 for o in plain.outcomes)


# ----------------------------------------------------------------------------- real models, real ORT


@pytest.fixture(scope="module")
def real_results(tmp_path_factory):
    """Real models, benched as CI should: baseline and candidate interleaved in one job.

    A/A: the base model against itself; A/B: the base against the same architecture at 2x
    width and 2x depth (several times slower).
    """
    from edgetune.bench import bench_models
    from edgetune.bench.testing import make_streaming_model
    from edgetune._io import atomic_write_text

    d = tmp_path_factory.mktemp("real")
    base = make_streaming_model(d / "base.onnx", width=192, depth=2)
    slow = make_streaming_model(d / "slow.onnx", width=384, depth=4)
    out = {}
    for names, models in ((("a1", "a2"), (base, base)), (("base", "slow"), (base, slow))):
        for name, result in zip(names, bench_models(models, "local", rounds=2, runs=200, warmup=20)):
            out[name] = d / f"{name}.json"
            atomic_write_text(out[name], json.dumps(result))
    # The floor is generous: this test asks that a several-fold slowdown is caught and an A/A
    # pair is not; benchmarks/bench_regression.py measures the rates at realistic effect sizes.
    out["budgets"] = write(d / "budgets.yaml", "local: {noise_floor_pct: 25}\n")
    return out


def test_real_slower_model_is_flagged(real_results, tmp_path):
    junit = tmp_path / "r.xml"
    rc = main(["check", "--results", str(real_results["slow"]), "--baseline", str(real_results["base"]),
               "--budgets", str(real_results["budgets"]), "--junit", str(junit)])
    assert rc == 1
    assert ET.parse(junit).getroot().find("testsuite").get("failures") in ("1", "2")


def test_same_model_measured_twice_passes(real_results):
    rc = main(["check", "--results", str(real_results["a2"]), "--baseline", str(real_results["a1"]),
               "--budgets", str(real_results["budgets"])])
    assert rc == 0


def test_interleaved_results_are_compared_paired(real_results):
    from edgetune.bench._check import load_results, pairing

    a1, a2, slow = (load_results(real_results[k]) for k in ("a1", "a2", "slow"))
    assert pairing(a1, a2) == {"block": 20, "paired": True}
    assert pairing(a1, slow)["paired"] is False  # different jobs


# ----------------------------------------------------------------------------- run-level gates (_gate.py)


def runs_json(path: Path, run_medians, *, steps: int = 40, sigma: float = 0.05, host=None, seed: int = 0,
              target: str = "local", follow: float = 1.0) -> Path:
    """A bench result of len(run_medians) rounds; ``host`` (per round) slows the reference by ``host`` and
    the model by ``host ** follow`` (1: alike)."""
    rng = np.random.default_rng(seed)
    host = np.ones(len(run_medians)) if host is None else np.asarray(host, dtype=float)
    samples = np.concatenate([m * h ** follow * rng.lognormal(0, sigma, steps) for m, h in zip(run_medians, host)])
    ref = np.concatenate([1.0 * h * rng.lognormal(0, sigma, steps) for h in host])
    path = bench_json(path, samples, target=target, rounds=len(run_medians),
                      reference={"samples_ms": ref.tolist()}, created=f"2026-01-01T00:00:{seed % 60:02d}")
    return path


def test_round_values_divide_out_the_host_speed():
    from edgetune.bench._gate import round_values

    rng = np.random.default_rng(0)
    host = np.array([1.0, 1.4, 1.0, 1.4])  # a busy neighbour in rounds 2 and 4
    samples = np.concatenate([2.0 * h * rng.lognormal(0, 0.01, 50) for h in host])
    ref = np.concatenate([h * rng.lognormal(0, 0.01, 50) for h in host])
    raw, norm = round_values(samples, 4), round_values(samples, 4, reference=ref)
    assert raw.max() / raw.min() > 1.3 and norm.max() / norm.min() < 1.03
    with pytest.raises(ValueError, match="equal rounds"):
        round_values(samples[:-1], 4)


def test_stability_score_follows_executorch_weights():
    from edgetune.bench._gate import stability

    steady = stability([1.0, 1.0, 1.0], samples=[1.0] * 100)
    assert steady["score"] == 100 and steady["rating"] == "excellent"
    noisy = stability([1.0, 1.25, 0.8, 1.3], samples=np.r_[np.ones(90), 3 * np.ones(10)])
    assert noisy["cv_pct"] > 10 and noisy["score"] < 60 and noisy["rating"] == "poor"
    one = stability([1.0], samples=[1.0, 1.1, 1.2])
    assert one["cv_pct"] is None and one["runs"] == 1 and 0 <= one["score"] <= 100


def test_compare_runs_rates_and_noisy_host():
    from edgetune.bench._gate import compare_runs

    rng = np.random.default_rng(1)
    run = lambda n, shift=1.0, s=0.02: shift * rng.lognormal(0, s, n)  # noqa: E731
    alarms = sum(compare_runs(run(10), run(5)).verdict == "regression" for _ in range(100))
    hits = sum(compare_runs(run(10), run(5, 1.10)).verdict == "regression" for _ in range(100))
    assert alarms <= 5 and hits >= 95
    c = compare_runs(run(10, s=0.15), run(5, 1.10, s=0.15))
    assert c.verdict == "noisy" and c.detectable_pct > 10
    assert compare_runs(run(10, s=0.15), run(5, 2.0, s=0.15)).verdict == "regression"  # clear even when noisy
    assert compare_runs(run(10), run(5, 0.85)).verdict == "improvement"


def test_reference_slope_recovers_how_much_the_model_follows_the_host():
    from edgetune.bench._gate import SLOPE_RANGE, adjust_runs, reference_slope

    rng = np.random.default_rng(5)
    ref = np.exp(rng.normal(np.log(0.26), 0.19, 40))  # the recorded VM: reference p50s spread ~19% between runs
    model = 0.53 * (ref / 0.26) ** 0.8 * rng.lognormal(0, 0.02, 40)
    assert abs(reference_slope(model, ref) - 0.8) < 0.05
    # two files at different levels (another model version): centred per file, the slope stays
    shifted = np.r_[model[:20], 1.3 * model[20:]]
    assert abs(reference_slope(shifted, ref, [0] * 20 + [1] * 20) - 0.8) < 0.05
    assert reference_slope(model[:2], ref[:2]) == 1.0  # too few runs: the plain ratio
    assert reference_slope(model, np.full(40, 0.26)) == 1.0  # no host-speed change to fit on
    assert reference_slope(ref ** 5, ref) == SLOPE_RANGE[1]  # clipped
    adj = adjust_runs(model, ref, 0.8, np.log(0.26))
    assert np.std(np.log(adj)) < 0.03 < np.std(np.log(model / ref))  # adjusted beats the ratio


def synthetic_vm_runs(rng, n: int, host_shift: float = 1.0, slowdown: float = 1.0):
    """Run p50s (model, reference) with the recorded VM's noise: host speed spread 19% between runs, the
    model following 0.8 of it, 3.5% run noise left over (gate-long-vm.json's diagnosis)."""
    ref = np.exp(rng.normal(np.log(0.26 * host_shift), 0.19, n))
    return slowdown * 0.53 * (ref / 0.26) ** 0.8 * rng.lognormal(0, 0.035, n), ref


def test_fitted_slope_gates_where_the_ratio_over_corrects():
    from edgetune.bench._gate import compare_runs

    rng = np.random.default_rng(6)
    verdicts = {"fitted": {"aa": [], "ab": []}, "ratio": {"aa": [], "ab": []}}
    for k in range(100):
        base = synthetic_vm_runs(rng, 20)
        # the candidate job lands on a faster host (A/A) or a slower one (a 10% slower model)
        aa, ab = synthetic_vm_runs(rng, 10, host_shift=0.75), synthetic_vm_runs(rng, 10, 1.3, slowdown=1.10)
        for rule, slope in (("fitted", None), ("ratio", 1.0)):
            for kind, cand in (("aa", aa), ("ab", ab)):
                c = compare_runs(base[0], cand[0], baseline_reference=base[1], candidate_reference=cand[1],
                                 slope=slope, n_boot=500, seed=k)
                verdicts[rule][kind].append(c.verdict)
    rate = lambda vs: np.mean([v == "regression" for v in vs])  # noqa: E731
    assert rate(verdicts["fitted"]["ab"]) >= 0.95 and rate(verdicts["fitted"]["aa"]) <= 0.05
    # dividing by the reference reads the faster host as a slower model, and hides part of the slowdown
    assert rate(verdicts["ratio"]["aa"]) > 0.2 and rate(verdicts["ratio"]["ab"]) < 0.9
    with pytest.raises(ValueError, match="both"):
        compare_runs(base[0], aa[0], baseline_reference=base[1])


RECORDING = Path(__file__).parent.parent / "benchmarks" / "results" / "gate-history-long-vm.json"


def recorded_rounds():
    """The recorded A/A + A/B rounds of the 2-core VM (record_gate_history.py), samples in ms."""
    rec = json.loads(RECORDING.read_text())
    unit = rec["sample_unit_ms"]
    return {m: [{k: [v * unit for v in r[k]] for k in ("samples_ms", "reference_samples_ms")}
                for r in rec["rounds"] if r["model"] == m] for m in ("A", "B")}


def recorded_result(rounds, name: str, scale: float = 1.0):
    from edgetune.bench._check import Results

    bench = {"latency_ms": {}, "rounds": len(rounds), "target": "local",
             "samples_ms": [scale * s for r in rounds for s in r["samples_ms"]],
             "reference": {"samples_ms": [s for r in rounds for s in r["reference_samples_ms"]]}}
    return Results(name, "local", bench, None, None)


def test_stored_baseline_on_recorded_noise_held_out_half():
    """The second half of the recording (the rule was chosen on the first): 20-run baselines against
    disjoint 10-run candidates of A (A/A), B (a real ~10% slower model) and A x 1.10."""
    from edgetune.bench._check import check_stored_baseline

    rounds = recorded_rounds()
    a, b = rounds["A"][120:], rounds["B"][120:]
    fitted, ratio = {"bootstrap_resamples": 500}, {"bootstrap_resamples": 500, "reference_slope": 1}
    got = {"aa": [], "ab": [], "x1.10": []}
    for i in range(0, 120, 20):
        base = [recorded_result(a[i:i + 20], f"base{i}")]
        for j in range(0, 120, 10):
            if i <= j < i + 20:
                continue
            for kind, cand in (("aa", recorded_result(a[j:j + 10], "a")), ("ab", recorded_result(b[j:j + 10], "b")),
                               ("x1.10", recorded_result(a[j:j + 10], "a", 1.10))):
                got[kind].append(check_stored_baseline(cand, base, fitted)[0].details["verdict"])
    rate = {k: np.mean([v == "regression" for v in vs]) for k, vs in got.items()}
    assert len(got["aa"]) == 60 and rate["ab"] >= 0.95 and rate["x1.10"] >= 0.95 and rate["aa"] <= 0.05
    # the same replay on the first half with the plain ratio misses the goal: the fixture can fail
    a1, b1 = rounds["A"][:120], rounds["B"][:120]
    missed = [check_stored_baseline(recorded_result(b1[j:j + 10], "b"), [recorded_result(a1[i:i + 20], "base")],
                                    ratio)[0].details["verdict"] != "regression"
              for i in range(0, 120, 20) for j in range(0, 120, 10) if not i <= j < i + 20]
    assert np.mean(missed) > 0.05


def test_change_points_and_history_regime():
    from edgetune.bench._gate import change_points, compare_to_history

    rng = np.random.default_rng(2)
    flat = rng.lognormal(0, 0.015, 12)
    step = np.r_[flat[:6], 1.12 * flat[6:]]
    assert change_points(step) == [6]
    assert change_points(flat) == []
    assert compare_to_history(flat, 1.10 * np.median(flat)).verdict == "regression"
    assert compare_to_history(flat, np.median(flat)).verdict == "unchanged"
    after_step = compare_to_history(step, 1.12 * np.median(flat))  # the regime is already the slower one
    assert after_step.verdict == "unchanged" and after_step.change_points == (6,) and after_step.regime_size == 6
    assert compare_to_history(flat[:2], 2.0).verdict == "noisy"  # too short to gate


def test_stored_baseline_cli_exit_codes_and_junit(tmp_path):
    host = [1.0, 1.4, 1.0, 1.0, 1.4, 1.0, 1.4, 1.0, 1.0, 1.4]  # the baseline's job had a busy neighbour
    base = runs_json(tmp_path / "base.json", [2.0] * 10, host=host, seed=1)
    same = runs_json(tmp_path / "same.json", [2.0] * 5, host=[1.4] * 5, seed=2)  # slower host, same model
    slow = runs_json(tmp_path / "slow.json", [2.3] * 5, seed=3)
    junit = tmp_path / "r.xml"
    assert main(["check", "--results", str(same), "--baseline", str(base), "--junit", str(junit)]) == 0
    assert main(["check", "--results", str(slow), "--baseline", str(base), "--junit", str(junit)]) == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["gate_status"] == "fail" and float(props["stability_score"]) > 0
    assert [c.get("name") for c in suite.findall("testcase")] == ["no p50 regression vs stored baseline"]
    wild = runs_json(tmp_path / "wild.json", [2.0, 2.6, 1.7, 2.4, 1.9], sigma=0.05, seed=4)
    wild_base = runs_json(tmp_path / "wb.json", [2.0, 2.5, 1.6, 2.2, 2.9, 1.8], seed=5)
    assert main(["check", "--results", str(wild), "--baseline", str(wild_base), "--junit", str(junit)]) == 3
    case = ET.parse(junit).getroot().find("testsuite").find("testcase")
    assert case.find("skipped").get("type") == "noisy" and "too noisy to gate" in case.find("skipped").get("message")


def test_stored_baseline_fits_the_reference_slope(tmp_path):
    rng = np.random.default_rng(7)
    host = np.exp(rng.normal(0, 0.19, 20))
    base = runs_json(tmp_path / "base.json", [2.0] * 20, host=host, seed=1, follow=0.8)
    # the same model on a 30% faster host: the ratio reads (0.7 ** -0.2) = +7% as a regression
    fast = runs_json(tmp_path / "fast.json", [2.0] * 10, host=[0.7] * 10, seed=2, follow=0.8)
    slow = runs_json(tmp_path / "slow.json", [2.2] * 10, host=[1.3] * 10, seed=3, follow=0.8)
    ratio = write(tmp_path / "ratio.yaml", "local:\n  reference_slope: 1\n")
    assert main(["check", "--results", str(fast), "--baseline", str(base)]) == 0
    assert main(["check", "--results", str(fast), "--baseline", str(base), "--budgets", str(ratio)]) == 1
    assert main(["check", "--results", str(slow), "--baseline", str(base)]) == 1
    from edgetune.bench._check import run_check

    d = run_check(str(slow), baseline_path=str(base)).outcomes[0]
    assert abs(d.details["reference_slope"] - 0.8) < 0.1 and 7 < d.details["diff_pct"] < 13
    assert "baseline's host speed (reference slope 0.8" in d.message
    bad = write(tmp_path / "bad.yaml", "local:\n  reference_slope: 3\n")
    assert main(["check", "--results", str(fast), "--baseline", str(base), "--budgets", str(bad)]) == 2


def test_history_fits_the_reference_slope(tmp_path):
    hist = tmp_path / "history"
    hist.mkdir()
    rng = np.random.default_rng(8)
    for i in range(8):
        runs_json(hist / f"main-{i}.json", [2.0] * 5, host=np.exp(rng.normal(0, 0.19, 5)), seed=50 + i,
                  follow=0.8)
    fast = runs_json(tmp_path / "fast.json", [2.0] * 5, host=[0.7] * 5, seed=60, follow=0.8)
    slow = runs_json(tmp_path / "slow.json", [2.2] * 5, host=[1.3] * 5, seed=61, follow=0.8)
    assert main(["check", "--results", str(fast), "--history", str(hist)]) == 0
    assert main(["check", "--results", str(slow), "--history", str(hist)]) == 1
    from edgetune.bench._check import run_check

    d = run_check(str(slow), history_dir=str(hist)).outcomes[0].details
    assert abs(d["reference_slope"] - 0.8) < 0.1


def test_history_cli(tmp_path):
    hist = tmp_path / "history"
    hist.mkdir()
    rng = np.random.default_rng(3)
    for i in range(8):
        runs_json(hist / f"main-{i}.json", 2.0 * rng.lognormal(0, 0.01, 3), seed=10 + i)
    runs_json(hist / "other-device.json", [9.0] * 3, seed=30, target="ssh://ci@pi")
    ok = runs_json(tmp_path / "ok.json", [2.0] * 3, seed=40)
    slow = runs_json(tmp_path / "slow.json", [2.3] * 3, seed=41)
    assert main(["check", "--results", str(ok), "--history", str(hist)]) == 0
    assert main(["check", "--results", str(slow), "--history", str(hist)]) == 1
    from edgetune.bench._check import run_check

    report = run_check(str(slow), history_dir=str(hist))
    assert report.outcomes[0].details["history"] == 8 and any("other-device" in w for w in report.warnings)
    assert main(["check", "--results", str(ok), "--history", str(tmp_path / "nope")]) == 2


def test_bench_reference_attaches_normalizing_samples(tmp_path, monkeypatch):
    from edgetune.bench import bench_model
    from edgetune.bench._check import Results
    from edgetune.bench.testing import make_streaming_model

    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "cache"))
    model = make_streaming_model(tmp_path / "m.onnx", width=64, depth=1)
    r = bench_model(model, "local", runs=40, warmup=5, rounds=2, reference=True)
    assert len(r["reference"]["samples_ms"]) == len(r["samples_ms"]) == 80
    assert r["stability"]["runs"] == 2 and r["stability"]["normalized"] is True
    values = Results("m", "local", r, None, None).run_values("p50", normalized=True)
    assert len(values) == 2 and all(v > 0 for v in values)
    assert (tmp_path / "cache" / "bench").is_dir()
