"""What every model family implements: a CTC model with a full-utterance and a streaming path.

The two paths must agree (within float rounding) on any input whose length is a whole number
of chunks: ``forward`` applies the streaming attention mask over the whole utterance (used
for training and as the parity reference), ``forward_chunk`` processes one chunk with
explicit cache tensors (what is exported to ONNX).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn


class StreamingCTCModel(nn.Module, ABC):
    """Base class of model families.

    Attributes set by subclasses:
        chunk_frames: feature frames (10 ms) per streaming chunk.
        subsampling: feature frames per output frame.
        n_mels, vocab_size: input and output widths.
    """

    chunk_frames: int
    subsampling: int
    n_mels: int
    vocab_size: int
    family: str

    def __init__(self, n_mels: int) -> None:
        super().__init__()
        # global feature normalisation (set from training data); a constant in the export
        self.register_buffer("feat_mean", torch.zeros(n_mels))
        self.register_buffer("feat_std", torch.ones(n_mels))

    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-mel-bin mean and standard deviation of the training features."""
        self.feat_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feat_std.copy_(torch.clamp(torch.as_tensor(std, dtype=torch.float32), min=1e-3))

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.feat_mean) / self.feat_std

    @abstractmethod
    def forward(self, feats: torch.Tensor, chunk_ms: int | None = None) -> torch.Tensor:
        """Full utterance: features [B, T, n_mels] -> logits [B, T // subsampling, vocab], attending as a
        stream of ``chunk_ms`` chunks would (None: the model's own chunk; 0: full context)."""

    @abstractmethod
    def set_chunk(self, chunk_ms: int) -> None:
        """Make ``chunk_ms`` the streaming chunk of ``forward``, ``forward_chunk`` and ``cache_shapes``."""

    @abstractmethod
    def forward_chunk(self, feats: torch.Tensor, *caches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One chunk [1, chunk_frames, n_mels] plus caches -> (logits [1, chunk_frames // subsampling, vocab], *new caches)."""

    @abstractmethod
    def cache_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """Name and shape of each cache tensor, in ``forward_chunk`` argument order (zeros at start)."""

    @abstractmethod
    def pruning_spec(self) -> dict[str, Any]:
        """Keyword arguments for torch-pruning: ``ignored_layers`` (the CTC head) and ``num_heads``."""

    @abstractmethod
    def edge_layers(self) -> list[str]:
        """Names of the first and last layers, kept at 8 bits in a 4-bit model."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The actual architecture (widths after pruning), written to the ONNX metadata."""

    def init_caches(self, batch: int = 1) -> list[torch.Tensor]:
        """Zero caches for the start of an utterance."""
        dev = self.feat_mean.device
        return [torch.zeros((batch, *shape[1:]), device=dev) for _, shape in self.cache_shapes()]

    def stream(self, feats: torch.Tensor) -> torch.Tensor:
        """Run ``forward_chunk`` over features [1, T, n_mels] (T a multiple of chunk_frames); returns logits."""
        caches = self.init_caches(feats.shape[0])
        outs = []
        for t in range(0, feats.shape[1], self.chunk_frames):
            logits, *caches = self.forward_chunk(feats[:, t:t + self.chunk_frames], *caches)
            outs.append(logits)
        return torch.cat(outs, dim=1)
