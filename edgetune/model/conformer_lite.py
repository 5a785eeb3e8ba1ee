"""conformer_lite: a small, exactly streamable conformer-style CTC encoder.

    features [B, T, 80] --normalise--> Conv1d(k=4, s=4) --SiLU--> x [B, T/4, d]
    N x Block:  x += ConvModule(x)     LN, pointwise d->2d, GLU, causal depthwise conv (k), LN, SiLU, pointwise d->d
                x += ChunkAttention(x) LN, qkv d->3a, softmax over own chunk + `left_chunks` previous chunks, proj a->d
                x += FFN(x)            LN, d->f, SiLU, f->d
    LN -> CTC head d->29*u -> logits [B, T/4*u, 29]   (u = output_upsample: u CTC frames per encoder frame)

Streaming-exact by construction: the subsampling conv has kernel = stride = 4 (no overlap
across chunks); the depthwise conv is causal with a (k-1)-frame left cache; attention sees
only cached K/V of previous chunks; only LayerNorm (no BatchNorm). The conv module comes first
in each block, so attention sees position through the convolutions (no positional encoding).

Widths are read from the layers at run time (``qkv.out_features``, ``dw.in_channels``), so a
model pruned by torch-pruning keeps working and exports its pruned cache shapes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgetune.knobs import CHUNK_QUANTUM_MS, FRAME_SHIFT_MS, SUBSAMPLING, Knobs
from edgetune.model.base import StreamingCTCModel
from edgetune.model.configs import ConformerLiteConfig
from edgetune.model.quant import QConv1d, QLinear


def chunk_mask(frames: int, chunk: int, left_chunks: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean [frames, frames] mask: query i may attend key j iff chunk(i) - left_chunks <= chunk(j) <= chunk(i)."""
    idx = torch.arange(frames, device=device) // chunk
    diff = idx[:, None] - idx[None, :]
    return (diff >= 0) & (diff <= left_chunks)


class ConvModule(nn.Module):
    """LN -> pointwise (GLU) -> causal depthwise conv -> LN -> SiLU -> pointwise."""

    def __init__(self, d: int, kernel: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.pw1 = QLinear(d, 2 * d)
        self.dw = QConv1d(d, d, kernel, groups=d)
        self.norm_dw = nn.LayerNorm(d)
        self.pw2 = QLinear(d, d)
        self.kernel = kernel
        self.drop = nn.Dropout(dropout)

    def _run(self, x: torch.Tensor, left: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.pw1(self.norm(x)).chunk(2, dim=-1)
        y = (a * torch.sigmoid(b)).transpose(1, 2)                       # [B, c, T]
        y = F.pad(y, (self.kernel - 1, 0)) if left is None else torch.cat([left, y], dim=2)
        new_left = y[:, :, y.shape[2] - (self.kernel - 1):]               # [B, c, k-1]
        z = self.dw(y).transpose(1, 2)                                    # [B, T, c]
        return self.drop(self.pw2(F.silu(self.norm_dw(z)))), new_left

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, None)[0]

    def forward_chunk(self, x: torch.Tensor, left: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._run(x, left)


class ChunkAttention(nn.Module):
    """Multi-head self-attention restricted to the own chunk and a bounded left context."""

    def __init__(self, d: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.qkv = QLinear(d, 3 * d)
        self.proj = QLinear(d, d)
        self.n_heads = n_heads
        # fixed at construction: pruning removes head dims but must not rescale the logits
        self.scale = (d // n_heads) ** -0.5
        self.drop = nn.Dropout(dropout)

    def _heads(self) -> tuple[int, int, int]:
        width = self.qkv.out_features // 3   # from the layer: survives pruning
        return width, self.n_heads, width // self.n_heads

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        width, H, hd = self._heads()
        qkv = self.qkv(self.norm(x)).reshape(B, T, 3, H, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)                                           # [B, H, T, hd]
        att = (q * self.scale) @ k.transpose(-2, -1)                      # [B, H, T, T]
        att = self.drop(att.masked_fill(~mask, float("-inf")).softmax(dim=-1))
        y = (att @ v).transpose(1, 2).reshape(B, T, width)
        return self.drop(self.proj(y))

    def forward_chunk(self, x: torch.Tensor, kv_cache: torch.Tensor,
                      valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [1, C, d]; kv_cache [1, L*C, 2*width]; valid [1, (L+1)*C] (1 = filled)."""
        _, C, _ = x.shape
        width, H, hd = self._heads()
        qkv = self.qkv(self.norm(x))                                      # [1, C, 3*width]
        q = qkv[:, :, :width].reshape(1, C, H, hd).transpose(1, 2)        # [1, H, C, hd]
        kv = torch.cat([kv_cache, qkv[:, :, width:]], dim=1)              # [1, (L+1)C, 2*width]
        S = kv.shape[1]
        k = kv[:, :, :width].reshape(1, S, H, hd).transpose(1, 2)         # [1, H, S, hd]
        v = kv[:, :, width:].reshape(1, S, H, hd).transpose(1, 2)
        att = (q * self.scale) @ k.transpose(-2, -1)                      # [1, H, C, S]
        att = att.masked_fill(valid[:, None, None, :] < 0.5, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(1, C, width)
        return self.proj(y), kv[:, C:]


class FeedForward(nn.Module):
    def __init__(self, d: int, ff: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1 = QLinear(d, ff)
        self.fc2 = QLinear(ff, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(F.silu(self.fc1(self.norm(x))))))


class Block(nn.Module):
    def __init__(self, d: int, ff: int, n_heads: int, kernel: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = ConvModule(d, kernel, dropout)
        self.attn = ChunkAttention(d, n_heads, dropout)
        self.ffn = FeedForward(d, ff, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.conv(x)
        x = x + self.attn(x, mask)
        return x + self.ffn(x)

    def forward_chunk(self, x: torch.Tensor, kv: torch.Tensor, conv: torch.Tensor,
                      valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y, conv = self.conv.forward_chunk(x, conv)
        x = x + y
        y, kv = self.attn.forward_chunk(x, kv, valid)
        x = x + y
        return x + self.ffn(x), kv, conv


class ConformerLite(StreamingCTCModel):
    family = "conformer_lite"

    def __init__(self, config: ConformerLiteConfig, knobs: Knobs) -> None:
        super().__init__(config.n_mels)
        w = config.widths(knobs.depth_multiplier)
        d = w["d_model"]
        self.config = config
        self.n_mels = config.n_mels
        self.vocab_size = config.vocab_size
        self.upsample = config.output_upsample
        self.subsampling = SUBSAMPLING // config.output_upsample   # feature frames per output frame
        self.set_chunk(knobs.chunk_ms)
        self.subsample = QConv1d(config.n_mels, d, SUBSAMPLING, stride=SUBSAMPLING)
        self.blocks = nn.ModuleList(
            Block(d, w["ff_dim"], w["n_heads"], config.conv_kernel, config.dropout) for _ in range(config.n_layers)
        )
        self.norm_out = nn.LayerNorm(d)
        self.head = QLinear(d, config.vocab_size * config.output_upsample)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T', d] -> [B, T' * upsample, vocab]."""
        y = self.head(self.norm_out(x))
        return y.reshape(y.shape[0], y.shape[1] * self.upsample, self.vocab_size)

    def _embed(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.subsample(self.normalize(feats).transpose(1, 2))        # [B, d, T/4]
        return F.silu(x.transpose(1, 2))                                 # [B, T/4, d]

    def set_chunk(self, chunk_ms: int) -> None:
        """Stream in chunks of ``chunk_ms`` from now on (the weights serve any chunk after dynamic-chunk training)."""
        self.chunk_ms = int(chunk_ms)
        self.chunk_frames = self.chunk_ms // FRAME_SHIFT_MS
        self.chunk = self.chunk_frames // SUBSAMPLING            # encoder frames per chunk
        self.left_chunks = self.config.resolve_left_chunks(self.chunk_ms)

    def forward(self, feats: torch.Tensor, chunk_ms: int | None = None) -> torch.Tensor:
        """Full utterance with the streaming mask of ``chunk_ms`` (default: the model's chunk; 0: full context)."""
        x = self._embed(feats)
        if chunk_ms is None:
            chunk, left = self.chunk, self.left_chunks
        elif chunk_ms == 0:
            chunk, left = max(1, x.shape[1]), 0
        else:
            chunk, left = chunk_ms // CHUNK_QUANTUM_MS, self.config.resolve_left_chunks(chunk_ms)
        mask = chunk_mask(x.shape[1], chunk, left, x.device)
        for block in self.blocks:
            x = block(x, mask)
        return self._logits(x)

    def forward_chunk(self, feats: torch.Tensor, *caches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mask_cache, layer_caches = caches[0], caches[1:]
        ones = torch.ones(1, self.chunk, dtype=mask_cache.dtype, device=mask_cache.device)
        valid = torch.cat([mask_cache, ones], dim=1)                     # [1, (L+1)C]
        x = self._embed(feats)
        new_caches: list[torch.Tensor] = [valid[:, self.chunk:]]
        for i, block in enumerate(self.blocks):
            x, kv, conv = block.forward_chunk(x, layer_caches[2 * i], layer_caches[2 * i + 1], valid)
            new_caches += [kv, conv]
        return (self._logits(x), *new_caches)

    def cache_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        left = self.left_chunks * self.chunk
        shapes: list[tuple[str, tuple[int, ...]]] = [("mask", (1, left))]
        for i, block in enumerate(self.blocks):
            shapes.append((f"kv_{i}", (1, left, 2 * (block.attn.qkv.out_features // 3))))
            shapes.append((f"conv_{i}", (1, block.conv.dw.in_channels, block.conv.kernel - 1)))
        return shapes

    def pruning_spec(self) -> dict[str, Any]:
        return {
            "ignored_layers": [self.head],
            "num_heads": {block.attn.qkv: block.attn.n_heads for block in self.blocks},
        }

    def edge_layers(self) -> list[str]:
        return ["subsample", "head"]

    def describe(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "d_model": self.subsample.out_channels,
            "chunk_frames": self.chunk_frames,
            "left_chunks": self.left_chunks,
            "output_upsample": self.upsample,
            "layers": [
                {
                    "conv_dim": b.conv.dw.in_channels,
                    "attn_dim": b.attn.qkv.out_features // 3,
                    "n_heads": b.attn.n_heads,
                    "ff_dim": b.ffn.fc1.out_features,
                }
                for b in self.blocks
            ],
            "params": sum(p.numel() for p in self.parameters()),
        }


def build_conformer_lite(config: ConformerLiteConfig, knobs: Knobs) -> ConformerLite:
    return ConformerLite(config, knobs)
