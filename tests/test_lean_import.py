"""Importing edgetune's packages and commands stays light (torchao ``test/test_lean_import.py``).

One fresh interpreter imports every public subpackage and module of edgetune and every
``edgetune.cli`` command, strictest first, and after each import checks that none of the heavy
libraries that module must not pull in is loaded. ``bench``, ``check`` and ``transcribe`` run on boards and CI runners
without torch, so most packages may not even load numpy; the numeric ones (data features,
search, report, schedulers) may load numpy but nothing heavier. A new subpackage or command is
covered without editing this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
