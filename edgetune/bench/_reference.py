"""The host-speed reference: a fixed small streaming model timed beside the model under test.

On a shared or throttling host the speed of the whole machine changes between jobs (a busy
neighbour on the sibling hyperthread slowed this 2-core VM by ~40% for minutes at a time), so
latency measured today and a baseline stored last week differ by more than a 10% regression.
``edgetune bench --reference`` alternates the model with this reference in one runner process
(block interleaving) and reports the model's latency *relative to the reference*: a slowdown
of the host slows both, a slower model only one. The reference never changes (fixed shape
and seed), so a normalized result from one job compares with a normalized baseline from
another.
"""

from __future__ import annotations

import os
from pathlib import Path

# Never change these: stored baselines are normalized against the model they describe.
REFERENCE = {"width": 256, "depth": 4, "seed": 1616, "chunk_ms": 320}
REFERENCE_NAME = "edgetune-reference-w256-d4-s1616.onnx"


def reference_model(directory: str | os.PathLike | None = None) -> Path:
    """Path of the reference model, written (atomically) under ``directory`` or the edgetune cache."""
    from edgetune.bench.testing import make_streaming_model

    if directory is None:
        directory = Path(os.environ.get("EDGETUNE_CACHE") or Path.home() / ".cache" / "edgetune") / "bench"
    path = Path(directory) / REFERENCE_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        make_streaming_model(path, **REFERENCE)
    return path
