"""``test_causal_cnn``: a family a team might bring, written against the public contract only.

    features [B, T, 80] --normalise--> Conv1d(k=4, s=4) --SiLU--> x [B, T/4, d]
    N x  x += SiLU(causal Conv1d(d, d, k)(x))       (k-1 frames of left cache per layer)
    Linear d -> vocab

No attention, so every chunk size gives the same logits; it is registered from the test suite
(not the package) through :func:`edgetune.model.register_family`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgetune.knobs import Knobs
from edgetune.model import register_family
from edgetune.model.base import StreamingCTCModel
from edgetune.model.quant import QConv1d, QLinear


@dataclass(frozen=True)
class CausalCNNConfig:
    d_model: int = 32
    n_layers: int = 2
    kernel: int = 5
    n_mels: int = 80
    vocab_size: int = 29

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CausalCNN(StreamingCTCModel):
    family = "test_causal_cnn"

    def __init__(self, config: CausalCNNConfig, knobs: Knobs) -> None:
        super().__init__(config.n_mels)
        self.config = config
        self.n_mels, self.vocab_size, self.subsampling = config.n_mels, config.vocab_size, 4
        d = max(8, int(config.d_model * knobs.depth_multiplier) // 8 * 8)
        self.subsample = QConv1d(config.n_mels, d, 4, stride=4)
        self.convs = nn.ModuleList(QConv1d(d, d, config.kernel) for _ in range(config.n_layers))
        self.head = QLinear(d, config.vocab_size)
        self.set_chunk(knobs.chunk_ms)

    def set_chunk(self, chunk_ms: int) -> None:
        self.chunk_ms, self.chunk_frames = chunk_ms, chunk_ms // 10

    def _embed(self, feats: torch.Tensor) -> torch.Tensor:
        return F.silu(self.subsample(self.normalize(feats).transpose(1, 2)))      # [B, d, T/4]

    def forward(self, feats: torch.Tensor, chunk_ms: int | None = None) -> torch.Tensor:
        x = self._embed(feats)
        for conv in self.convs:
            x = x + F.silu(conv(F.pad(x, (conv.kernel_size[0] - 1, 0))))
        return self.head(x.transpose(1, 2))

    def forward_chunk(self, feats: torch.Tensor, *caches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, new = self._embed(feats), []
        for conv, cache in zip(self.convs, caches):
            y = torch.cat([cache, x], dim=2)
            new.append(y[:, :, y.shape[2] - (conv.kernel_size[0] - 1):])
            x = x + F.silu(conv(y))
        return (self.head(x.transpose(1, 2)), *new)

    def cache_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(f"conv_{i}", (1, c.in_channels, c.kernel_size[0] - 1)) for i, c in enumerate(self.convs)]

    def pruning_spec(self) -> dict[str, Any]:
        return {"ignored_layers": [self.head], "num_heads": {}}

    def edge_layers(self) -> list[str]:
        return ["subsample", "head"]

    def describe(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "d_model": self.subsample.out_channels,
                "params": sum(p.numel() for p in self.parameters())}


register_family("test_causal_cnn", CausalCNNConfig, CausalCNN)
