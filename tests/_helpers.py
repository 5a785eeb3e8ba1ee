"""Shared test fixtures as plain data and functions (imported by test modules; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgetune.search import StudyConfig
    from edgetune.train import Example

#: the training tests' vocabulary, tiny architecture and padding value
VOCAB = ["<blank>", " ", *"abcdefghijklmnopqrstuvwxyz", "'"]
ARCH = {"d_model": 32, "n_layers": 1, "n_heads": 2}
SILENCE = math.log(1e-6)

#: the study every test config starts from: a small random-sampler study (:func:`study_yaml`)
STUDY: dict[str, Any] = {
    "study_name": "t",
    "n_trials": 2,
    "seed": 3,
    "space": {"bits": [8, 32], "sparsity": {"low": 0.0, "high": 0.8, "step": 0.1}, "chunk_ms": [160, 320]},
    "objectives": ["wer", "latency_ms", "size_bytes"],
    "train": {"epochs": 1},
    "sampler": {"name": "random"},
}
#: every knob of the default space searched (bits, sparsity, depth multiplier, chunk)
WIDE_SPACE: dict[str, Any] = {
    "bits": [4, 8, 32],
    "sparsity": {"low": 0.0, "high": 0.8, "step": 0.1},
    "depth_multiplier": {"low": 0.25, "high": 1.0},
    "chunk_ms": [160, 320, 640],
}


def study_dict(name: str = "t", n: int = 2, **overrides: Any) -> dict[str, Any]:
    """:data:`STUDY` named ``name`` with ``n`` trials; each override replaces one top-level key
    (``space=``, ``sampler=``, ``storage=``, ``budgets=``, ...), and ``key=None`` leaves the key out."""
    d = copy.deepcopy(STUDY)
    d.update(study_name=name, n_trials=n)
    for key, value in overrides.items():
        if value is None:
            d.pop(key, None)
        else:
            d[key] = copy.deepcopy(value)
    return d


def study_yaml(name: str = "t", n: int = 2, **overrides: Any) -> str:
    """:func:`study_dict` as the YAML text of a study config file."""
    import yaml

    return yaml.safe_dump(study_dict(name, n, **overrides), sort_keys=False, default_flow_style=None)


def study_config(name: str = "t", n: int = 2, **overrides: Any) -> StudyConfig:
    """:func:`study_yaml` parsed and validated, as ``edgetune search`` reads a config file."""
    from edgetune.search import config_from_yaml

    return config_from_yaml(study_yaml(name, n, **overrides))


def train_data(n: int, seed: int = 0) -> list[Example]:
    """``n`` synthetic examples whose features separate the words "ab"/"abc" from "ba"."""
    import torch

    from edgetune.train import Example

    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        frames = int(torch.randint(40, 120, (1,), generator=g))
        word = ["ab", "ba", "abc"][i % 3]
        feats = torch.randn(frames, 80, generator=g) + (2.0 if word.startswith("a") else -2.0)
        out.append(Example(feats, [VOCAB.index(c) for c in word], word, group=f"g{i % 2}"))
    return out


def tiny_test_audio() -> list:
    """Four real test utterances of the tiny corpus and a 0.3 s noise burst (shorter than two
    chunks): what the sherpa-onnx decode tests feed every exported model."""
    import numpy as np

    from edgetune.data import load_dataset

    noise = (0.05 * np.random.default_rng(0).standard_normal(4800)).astype(np.float32)
    return list(load_dataset("tiny", progress=False).test[:4]) + [noise]


def kill_mid_trial(pid: int, running: Callable[[], list]) -> Any | None:
    """SIGKILL the worker ``pid`` while ``running()`` (a fresh read of the storage) shows it holding a
    trial, and return that trial; ``None`` if it was between trials (it is then left running).

    The worker is frozen with SIGSTOP before the second read, so it cannot finish the trial between
    the read and the kill (reading, then killing, once aimed at a trial already COMPLETE)."""
    import os
    import signal

    os.kill(pid, signal.SIGSTOP)
    try:
        mine = running()
    except BaseException:
        os.kill(pid, signal.SIGCONT)
        raise
    if mine:
        os.kill(pid, signal.SIGKILL)
        return mine[0]
    os.kill(pid, signal.SIGCONT)
    return None
