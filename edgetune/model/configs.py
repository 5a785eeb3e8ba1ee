"""Config dataclasses of the model families (pure Python, no torch).

A family config holds the **base** architecture at ``depth_multiplier = 1.0``; the knobs
scale widths and set the streaming chunk when the model is built.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from edgetune.errors import ConfigError


def round_width(width: float, multiple: int = 8) -> int:
    """MobileNet-style width rounding: nearest multiple of ``multiple``, never below it."""
    return max(multiple, int(round(width / multiple)) * multiple)


@dataclass(frozen=True)
class ConformerLiteConfig:
    """A small streaming conformer: ×4 conv subsampling, N blocks (causal depthwise conv,
    chunk-wise causal self-attention over a bounded left context, FFN), LayerNorm only,
    CTC head.

    ``d_model`` and ``ff_mult`` are scaled by the depth multiplier (rounded to multiples of
    8). A frame attends to its own chunk and ``left_chunks`` previous chunks; with
    ``left_chunks = 0`` that number is derived from ``left_context_ms`` and the chunk size
    (at least one chunk), so the left context in time stays about constant across chunk sizes.
    ``dropout`` applies while training only (residual branches, attention weights, FFN).
    ``output_upsample``: CTC frames per encoder frame. The encoder runs at 40 ms (×4
    subsampling); with 2 the head emits two 20 ms frames per encoder frame, which gives CTC the
    slack it needs for fast speech (characters per second approach the 25 encoder frames per
    second) at the cost of a wider head only.
    """

    d_model: int = 96
    n_layers: int = 2
    n_heads: int = 4
    ff_mult: float = 2.0
    conv_kernel: int = 7
    left_context_ms: int = 960
    left_chunks: int = 0
    dropout: float = 0.1
    output_upsample: int = 1
    n_mels: int = 80
    vocab_size: int = 29
    version: int = 1

    def __post_init__(self) -> None:
        for name in ("d_model", "n_layers", "n_heads", "conv_kernel", "n_mels", "vocab_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"model config {name} must be an integer >= 1, but got {value!r}")
        if self.conv_kernel < 2:
            raise ConfigError(f"model config conv_kernel must be >= 2 (causal conv), but got {self.conv_kernel}")
        if not 0.5 <= float(self.ff_mult) <= 8:
            raise ConfigError(f"model config ff_mult must satisfy 0.5 <= ff_mult <= 8, but got {self.ff_mult!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"model config dropout must satisfy 0 <= dropout < 1, but got {self.dropout!r}")
        if self.output_upsample not in (1, 2, 4):
            raise ConfigError(f"model config output_upsample must be 1, 2 or 4, but got {self.output_upsample!r}")
        if self.left_chunks < 0 or self.left_context_ms < 0:
            raise ConfigError(
                f"model config left_chunks and left_context_ms must be >= 0, "
                f"but got {self.left_chunks} and {self.left_context_ms}"
            )

    def widths(self, depth_multiplier: float) -> dict[str, int]:
        """Layer widths at a depth multiplier: model width, FFN width, heads."""
        d = round_width(self.d_model * depth_multiplier)
        heads = self.n_heads
        while heads > 1 and d % (heads * 2):  # heads must divide d with an even head size
            heads -= 1
        return {"d_model": d, "ff_dim": round_width(d * self.ff_mult), "n_heads": heads}

    def resolve_left_chunks(self, chunk_ms: int) -> int:
        if self.left_chunks:
            return self.left_chunks
        return max(1, math.ceil(self.left_context_ms / chunk_ms))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
