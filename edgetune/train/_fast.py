"""Speed-ups of the training step, each switchable so ``benchmarks/train_speed.py`` can measure it.

:class:`FastPath` names them; :meth:`FastPath.default` picks what :func:`train_model` uses:

- ``sync_free_observer``: activation observers update their range with ``torch.where`` on the
  ``initialized`` flag instead of ``bool(initialized)``, which waited for the GPU once per
  quantizer per step (88 waits per step for the 6-layer base). Same numbers: on everywhere.
- ``async_batches``: a batch is gathered with one copy kernel (not one per utterance), its
  targets are copied from pinned memory without waiting, and the CTC lengths stay on the host
  (``F.ctc_loss`` reads them there anyway). Same numbers; on for CUDA (nothing to gain on CPU).
- ``fused_adamw``: ``torch.optim.AdamW(fused=True)``, one kernel for the whole update. Rounds
  differently from the loop implementation, so on for CUDA only.
- ``compile``: ``torch.compile(model.forward, dynamic=True)`` (one graph for every bucket
  shape); a compile error falls back to eager for the rest of the run. Off by default until
  measured on the GPU; ``EDGETUNE_COMPILE=1`` turns it on for CUDA runs.

:func:`lr_for_batch` scales the learning rate for batches larger than the one it was tuned at.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

#: batch size the learning rates in configs were tuned at (``BaseTrainConfig.batch_size``)
REFERENCE_BATCH = 32


@dataclass(frozen=True)
class FastPath:
    sync_free_observer: bool = True
    async_batches: bool = False
    fused_adamw: bool = False
    compile: bool = False

    @classmethod
    def default(cls, device: torch.device) -> "FastPath":
        """Everything that keeps CPU numbers identical, plus the CUDA-only speed-ups on CUDA."""
        if device.type != "cuda":
            return cls()
        return cls(async_batches=True, fused_adamw=True, compile=os.environ.get("EDGETUNE_COMPILE") == "1")

    @classmethod
    def off(cls) -> "FastPath":
        """The step as it was before issue 13 (for measurements)."""
        return cls(sync_free_observer=False)

    def with_(self, **changes: bool) -> "FastPath":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, bool]:
        return dict(self.__dict__)


def lr_for_batch(lr: float, batch_size: int, reference_batch: int = REFERENCE_BATCH, *,
                 max_lr: float = 1e-2) -> float:
    """Peak AdamW learning rate for ``batch_size`` when ``lr`` was tuned at ``reference_batch``.

    Square-root rule (Adam's update noise falls with sqrt(batch); Malladi et al. 2022, "On the SDEs
    and scaling rules for adaptive gradient algorithms"), capped at ``max_lr``: linear scaling
    diverges for Adam at large batches. Smaller batches scale down the same way.
    """
    if batch_size < 1 or reference_batch < 1 or lr <= 0:
        raise ValueError(f"lr_for_batch needs lr > 0 and batch sizes >= 1, but got lr={lr}, "
                         f"batch_size={batch_size}, reference_batch={reference_batch}")
    scaled = lr * math.sqrt(batch_size / reference_batch)
    return max(lr, min(max_lr, scaled)) if batch_size > reference_batch else scaled


def apply_observer_mode(model: Any, fast: FastPath) -> None:
    """Set every activation observer of ``model`` to the sync-free or the branching update."""
    from edgetune.model.quant import ActQuant

    for m in model.modules():
        if isinstance(m, ActQuant):
            m.sync_free = fast.sync_free_observer


def make_optimizer(model: Any, lr: float, weight_decay: float, device: torch.device,
                   fast: FastPath) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if fast.fused_adamw and device.type == "cuda":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


class Forward:
    """``model(feats, chunk_ms)``, through ``torch.compile`` when asked; falls back to eager on any compile error.

    ``error`` keeps the first error's text (None while compiled or never compiled).
    """

    def __init__(self, model: Any, compile: bool = False) -> None:
        self.model = model
        self.error: str | None = None
        self.compiled: Callable[..., torch.Tensor] | None = None
        if compile:
            try:
                self.compiled = torch.compile(model.forward, dynamic=True)
            except Exception as exc:  # no compiler backend here: eager
                self.disable(exc)

    @property
    def active(self) -> bool:
        return self.compiled is not None

    def disable(self, exc: BaseException) -> None:
        self.compiled = None
        self.error = f"{type(exc).__name__}: {exc}"[:800]
        warnings.warn(f"torch.compile failed, training continues in eager mode: {self.error}", RuntimeWarning,
                      stacklevel=2)

    def __call__(self, feats: torch.Tensor, chunk_ms: int | None = None) -> torch.Tensor:
        if self.compiled is not None:
            return self.compiled(feats, chunk_ms)
        return self.model(feats, chunk_ms)
