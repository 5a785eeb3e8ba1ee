"""Shared fixtures.

``tiny_model_path``: a real edgetune streaming ONNX file (conformer_lite, float32, untrained,
a few thousand parameters, chunk 160 ms) exported by the real exporter, parity-checked against
PyTorch. Session-scoped: built once (about a second) for every test that needs a model file.

``study_file``: writes a study config (:func:`_helpers.study_yaml`: the shared template, each
test stating only what differs) into the test's ``tmp_path``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from _helpers import study_yaml

TINY_MODEL_CONFIG = {"d_model": 32, "n_layers": 1, "n_heads": 2, "conv_kernel": 3}


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """An untrained float32 conformer_lite streaming ONNX file with edgetune metadata."""
    from edgetune.knobs import Knobs
    from edgetune.pipeline import export_untrained

    path = tmp_path_factory.mktemp("tiny_model") / "tiny.onnx"
    export_untrained(Knobs(bits=32, chunk_ms=160), path, model_config=TINY_MODEL_CONFIG, parity_utterances=4)
    return path


@pytest.fixture
def study_file(tmp_path: Path) -> Callable[..., Path]:
    """``study_file(name, n, file="study.yaml", **overrides)`` writes ``study_yaml(name, n, **overrides)``
    to ``tmp_path / file`` and returns that path; calling it again rewrites the file."""

    def write(name: str = "t", n: int = 2, *, file: str = "study.yaml", **overrides: Any) -> Path:
        path = tmp_path / file
        path.write_text(study_yaml(name, n, **overrides))
        return path

    return write
