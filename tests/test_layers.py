"""The layer contract (pyproject.toml ``[tool.importlinter]``): no module imports a layer above its own.

``lint-imports`` (import-linter) checks the contract over grimp's import graph, which holds every
import statement of a module, those inside functions and under ``if TYPE_CHECKING:`` too; the
second test shows that on imports this package makes only inside functions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> list[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    assert exe.is_file(), f"lint-imports is not installed beside {sys.executable}; fix: pip install -e '.[dev]'"
    return [str(exe), "--no-cache", "--no-logo"]


def test_layer_contract_is_kept() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([*_lint_imports(), str(ROOT / "pyproject.toml")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 kept, 0 broken" in run.stdout, run.stdout


def test_the_graph_counts_imports_inside_functions() -> None:
    import grimp

    graph = grimp.build_graph("edgetune", cache_dir=None)
    # these two imports stand only inside a function body, the third only under TYPE_CHECKING
    assert graph.direct_import_exists(importer="edgetune.search._study", imported="edgetune.pipeline")
    assert graph.direct_import_exists(importer="edgetune.base._model", imported="edgetune.train.trainer")
    assert graph.direct_import_exists(importer="edgetune.search._fidelity", imported="edgetune.schedulers._base")


def test_the_device_runner_imports_no_edgetune() -> None:
    """``edgetune/_runner.py`` is copied as-is to boards that have numpy and onnxruntime, not edgetune."""
    import ast

    runner = ROOT / "edgetune" / "_runner.py"
    imported = set()
    for node in ast.walk(ast.parse(runner.read_text())):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0] if node.level == 0 else ".")
    assert "numpy" in imported and "onnxruntime" in imported  # the walk sees the runner's imports
    assert not imported & {"edgetune", "."}, sorted(imported)
