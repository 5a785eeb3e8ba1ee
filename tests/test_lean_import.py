"""Importing edgetune's packages and commands stays light (torchao ``test/test_lean_import.py``),
and the light install runs ``edgetune bench``, ``check`` and ``transcribe``.

One fresh interpreter imports every public subpackage and module of edgetune and every
``edgetune.cli`` command, strictest first, and after each import checks that none of the heavy
libraries that module must not pull in is loaded. ``bench``, ``check`` and ``transcribe`` run on boards and CI runners
without torch, so most packages may not even load numpy; the numeric ones (data features,
search, report, schedulers) may load numpy but nothing heavier. A new subpackage or command is
covered without editing this file.

The light install (``pip install edgetune``, pyproject.toml's core dependencies) is played by a
``sitecustomize`` that makes every optional dependency (``edgetune._imports.EXTRAS``: torch,
optuna, ... ) fail to import, in the command's process and every process it starts. There
``bench`` (with ``--wer``), ``check`` (budgets, stored baseline, JUnit) and ``transcribe`` run on
a real exported model, and a command that needs the full install names the extra. A last test
keeps ``EXTRAS`` and pyproject.toml in step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

HEAVY = ("torch", "torchaudio", "onnxruntime", "onnx", "matplotlib", "plotly", "optuna", "pandas", "moocore",
         "scipy", "sherpa_onnx")
#: may load numpy (and nothing in HEAVY); every other package and command may not load numpy either
NUMERIC = ("edgetune.data", "edgetune.data.features", "edgetune.search", "edgetune.report", "edgetune.schedulers",
           "edgetune.export.sherpa")
#: test support, heavy by design or not importable as a module: the runner itself, its shim, test models
EXEMPT = ("edgetune.__main__", "edgetune._runner", "edgetune.testing")

PROBE = """
import importlib, json, pkgutil, sys
heavy, numeric, exempt = json.loads(sys.argv[1])
import edgetune, edgetune.cli
found = ({m.name for m in pkgutil.iter_modules(edgetune.__path__, "edgetune.") if not m.name[9:].startswith("_")}
         | {m.name for m in pkgutil.iter_modules(edgetune.cli.__path__, "edgetune.cli.")})
strict = ["edgetune"] + sorted(found - set(numeric) - set(exempt))
found = []
for name, banned in [*((m, heavy + ["numpy"]) for m in strict), *((m, heavy) for m in numeric)]:
    importlib.import_module(name)
    loaded = [b for b in banned if b in sys.modules]
    if loaded:
        found.append(f"{name} loads {', '.join(loaded)}")
        break  # later modules would be blamed for what this one loaded
print(json.dumps({"checked": strict + list(numeric), "heavy": found}))
"""


def test_importing_edgetune_packages_and_commands_loads_no_heavy_library() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps([list(HEAVY), list(NUMERIC), list(EXEMPT)])],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], result["heavy"]
    checked = set(result["checked"])  # the walk found what the old per-package tests named
    assert {"edgetune", "edgetune.bench", "edgetune.model", "edgetune.export", "edgetune.train", "edgetune.ship",
            "edgetune.pipeline", "edgetune.cli.transcribe", "edgetune.cli.check", "edgetune.cli.bench",
            "edgetune.cli.search", "edgetune.search", "edgetune.data"} <= checked


# ---- the light install: optional dependencies absent -------------------------------------------

ABSENT = """
import os, sys

ABSENT = set(os.environ["EDGETUNE_TEST_ABSENT"].split(","))


class Absent:  # a module that is not installed, as Python says it
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Absent())
"""


@pytest.fixture(scope="module")
def light(tmp_path_factory: pytest.TempPathFactory):
    """``light(*argv)``: ``python -m edgetune *argv`` where no optional dependency can be imported."""
    from edgetune._imports import EXTRAS

    site = tmp_path_factory.mktemp("light_site")
    (site / "sitecustomize.py").write_text(ABSENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO), os.environ.get("PYTHONPATH", "")]),
           "EDGETUNE_TEST_ABSENT": ",".join(sorted(EXTRAS))}

    def run(*argv: str, code: str | None = None) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "edgetune", *argv]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=site, env=env, timeout=300)

    probe = run(code="import jiwer, kaldi_native_fbank, numpy, onnx, onnxruntime, scipy, soundfile, yaml\n"
                     "try:\n    import torch\nexcept ModuleNotFoundError as e:\n    print('absent', e.name)")
    assert probe.stdout.split() == ["absent", "torch"], probe.stdout + probe.stderr  # the stand-in works
    return run


def test_bench_check_and_transcribe_run_without_the_full_extra(light, tiny_model_path: Path, tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    audio = tmp_path / "audio"
    audio.mkdir()
    for i, text in enumerate(["hello world", "good day"]):
        noise = 0.05 * np.random.default_rng(i).standard_normal(16000)
        sf.write(audio / f"u{i}.wav", noise.astype(np.float32), 16000)
        (audio / f"u{i}.txt").write_text(text)
    (tmp_path / "budgets.yaml").write_text("local: {p90_ms: 10000, size_bytes: 1000000000, wer_delta: 0.01}\n")
    model, out = str(tiny_model_path), tmp_path

    ok = light("--help")
    assert ok.returncode == 0 and "transcribe" in ok.stdout, ok.stderr[-3000:]
    bench = light("bench", model, "--runs", "20", "--warmup", "2", "--rounds", "2", "--reference",
                  "--baseline-model", model, "--baseline-json", str(out / "base.json"),
                  "--wer", str(audio), "--json", str(out / "cand.json"))
    assert bench.returncode == 0, bench.stderr[-3000:]
    cand = json.loads((out / "cand.json").read_text())
    assert len(cand["samples_ms"]) == 40 and cand["device_wer"]["utterances"] == 2 and cand["wer"] is not None
    assert json.loads((out / "base.json").read_text())["model"] == cand["model"]

    check = light("check", "--results", str(out / "cand.json"), "--budgets", str(out / "budgets.yaml"),
                  "--junit", str(out / "r.xml"))
    assert check.returncode == 0 and "PASS  p90_ms <= 10000ms" in check.stdout, check.stdout + check.stderr[-3000:]
    assert (out / "r.xml").read_text().count("<testcase") >= 2
    paired = light("check", "--results", str(out / "cand.json"), "--baseline", str(out / "base.json"))
    assert paired.returncode in (0, 1, 3) and "regression vs baseline" in paired.stdout, paired.stderr[-3000:]
    (out / "history").mkdir()
    (out / "history" / "base.json").write_text((out / "base.json").read_text())
    history = light("check", "--results", str(out / "cand.json"), "--history", str(out / "history"))
    assert history.returncode == 3 and "needs >= 4 results" in history.stdout, history.stderr[-3000:]  # 1 of 4

    text = light("transcribe", model, str(audio / "u0.wav"), str(audio / "u1.wav"), "--json")
    assert text.returncode == 0, text.stderr[-3000:]
    assert [json.loads(line)["audio"] for line in text.stdout.splitlines()] == [str(audio / "u0.wav"),
                                                                                 str(audio / "u1.wav")]


@pytest.mark.parametrize(("argv", "missing", "extra"), [
    (["search", "--config", "{tmp}/study.yaml", "--study-dir", "{tmp}/s", "--simulate", "--quiet"], "'optuna'", "full"),
    (["candidate", "--dataset", "tiny", "--out", "{tmp}/c", "--epochs", "1", "--quiet"], "'torch'", "full"),
    (["transcribe", "{model}", "{tmp}/u.wav", "--engine", "sherpa-onnx"], "sherpa-onnx", "ship"),
], ids=["search", "candidate", "transcribe-sherpa"])
def test_a_command_that_needs_an_extra_names_it(light, tiny_model_path: Path, tmp_path: Path, argv: list[str],
                                                missing: str, extra: str) -> None:
    import numpy as np
    import soundfile as sf

    from _helpers import study_yaml

    (tmp_path / "study.yaml").write_text(study_yaml())
    sf.write(tmp_path / "u.wav", np.zeros(8000, np.float32), 16000)
    run = light(*(a.format(model=tiny_model_path, tmp=tmp_path) for a in argv))
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert missing in run.stderr and f"Fix: pip install 'edgetune[{extra}]'" in run.stderr, run.stderr


def test_extras_match_pyproject() -> None:
    """Every optional module of ``EXTRAS`` is installed by the extra it names and by no core dependency;
    every requirement of the ``full`` extra is one of them."""
    import re
    from importlib.metadata import packages_distributions

    tomllib = pytest.importorskip("tomllib")
    from edgetune._imports import EXTRAS

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    norm = lambda req: re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower().replace("_", "-")  # noqa: E731
    core = {norm(r) for r in project["dependencies"]}
    extras = {name: {norm(r) for r in reqs} for name, reqs in project["optional-dependencies"].items()}
    dist_of = packages_distributions()
    found = {}
    for module, extra in EXTRAS.items():
        dists = {d.lower().replace("_", "-") for d in dist_of.get(module, [])}
        if not dists:
            continue  # not installed here (syne-tune): nothing to match
        assert dists & extras[extra], f"{module} ({dists}) is not in the {extra!r} extra"
        assert not dists & core, f"{module} ({dists}) is optional but a core dependency installs it"
        found.update(dict.fromkeys(dists, module))
    assert extras["full"] <= set(found), f"in the full extra but not in EXTRAS: {extras['full'] - set(found)}"
    assert {"torch", "optuna", "torchaudio"} <= extras["full"] and "onnxruntime" in core
