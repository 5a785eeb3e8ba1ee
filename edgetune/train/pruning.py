"""Structured (channel) pruning with torch-pruning.

``sparsity`` is torch-pruning's channel ratio: the share of channels removed from every
prunable group (the residual width, each FFN, conv module and attention), with the kept
width rounded down to a multiple of 8 (at least 8). Parameter count falls roughly with
``(1 - sparsity)^2``. The CTC head's outputs (the vocabulary) are never pruned; attention
heads keep their number and lose the same head dimensions in every head (``num_heads``), with
``heads x head_dim`` a multiple of 8.

Rounding: torch-pruning 1.6's own ``round_to`` rounds an attention group's per-head count
against the layer's total width (at 0.5 it removes two thirds of an attention layer; from 0.75
on none), so instead each group gets its own ratio (``pruning_ratio_dict``) that lands exactly
on the rounded width, and torch-pruning runs with ``round_to=None``. Importance is
``GroupMagnitudeImportance(p=2)`` as usual.

Quantizers are switched off while torch-pruning traces the model (its graph tracer must see
plain conv/linear ops) and restored afterwards; weight scales are recomputed from the pruned
weights on the next forward pass, activation ranges are per tensor and stay valid.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from edgetune.model.quant import ActQuant, quant_layers


@contextlib.contextmanager
def quant_disabled(model: nn.Module) -> Iterator[None]:
    """Temporarily run ``model`` in plain float (no fake quantization), then restore it."""
    acts = [(m, m.enabled) for m in model.modules() if isinstance(m, ActQuant)]
    layers = [(m, m.weight_bits) for m in quant_layers(model)]
    try:
        for m, _ in acts:
            m.enabled = False
        for m, _ in layers:
            m.weight_bits = 32
        yield
    finally:
        for m, enabled in acts:
            m.enabled = enabled
        for m, bits in layers:
            m.weight_bits = bits


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class StructuredPruner:
    """Reach channel ratio ``ratio`` in ``steps`` steps (1 = one shot); call :meth:`step` once per step.

    Step ``i`` brings every group to ``ratio * i / steps`` of its *original* channels removed
    (rounded as above), so the last step lands on the same widths as one shot. Each step is a
    fresh torch-pruning ``MetaPruner`` over the current model (torch-pruning's own
    ``iterative_steps`` loses track of attention head groups after the first step).
    """

    def __init__(self, model: Any, ratio: float, example_inputs: torch.Tensor, steps: int = 1) -> None:
        self.model = model
        self.ratio = float(ratio)
        self.steps = int(steps)
        self.example_inputs = example_inputs
        self.done = 0
        self._original: dict[nn.Module, int] = {}  # group key layer -> its channels before any step

    def step(self) -> tuple[int, int]:
        """Apply the next pruning step; returns (parameters before, parameters after)."""
        before = count_params(self.model)
        if self.done >= self.steps:
            return before, before
        was_training = self.model.training
        self.model.eval()
        with quant_disabled(self.model):
            pruner = _meta_pruner(self.model, self.example_inputs, self.ratio * (self.done + 1) / self.steps,
                                  self._original)
            with torch.no_grad():
                pruner.step()
        self.model.train(was_training)
        self.done += 1
        return before, count_params(self.model)


ROUND_TO = 8


def _kept(size: int, ratio: float, unit: int) -> int:
    """Channels kept of ``size`` at ``ratio``, rounded down to a multiple of ``unit`` (>= unit)."""
    keep = int(size * (1.0 - ratio) + 1e-9)
    return min(size, max(unit, keep - keep % unit))


def _meta_pruner(model: Any, example_inputs: torch.Tensor, ratio: float,
                 original: dict[nn.Module, int] | None = None) -> Any:
    """A one-step MetaPruner whose per-group ratios land on widths rounded to ROUND_TO.

    ``ratio`` is the share of each group's ``original`` channels removed once this step is done;
    ``original`` (filled on first use) remembers the group sizes before the first step.
    """
    import math

    import torch_pruning as tp

    spec = model.pruning_spec()
    kwargs = dict(importance=tp.importance.GroupMagnitudeImportance(p=2), round_to=None,
                  ignored_layers=spec["ignored_layers"], num_heads=dict(spec["num_heads"]))
    probe = tp.pruner.MetaPruner(model, example_inputs, pruning_ratio=ratio, **kwargs)
    ratios: dict[nn.Module, float] = {}
    for group in probe.DG.get_all_groups(ignored_layers=probe.ignored_layers,
                                         root_module_types=probe.root_module_types):
        key = next((dep.target.module for dep, _ in group
                    if probe.DG.is_out_channel_pruning_fn(dep.handler)), None)
        if key is None:
            continue
        is_attn, _ = probe._is_atten_group(group)
        if is_attn:
            group = probe._downstream_node_as_root_if_attention(group) or group
        ch_groups = probe._get_channel_groups(group)
        size = len(group[0][1]) // ch_groups          # channels per channel group (head dims for attention)
        unit = ROUND_TO // math.gcd(ROUND_TO, ch_groups)  # so that ch_groups x kept is a multiple of 8
        if original is not None:
            original.setdefault(key, size)
        keep = min(size, _kept(original[key] if original is not None else size, ratio, unit))
        # torch-pruning keeps int(size * (1 - r)): aim half a channel above to be safe from float error
        ratios[key] = max(0.0, 1.0 - (keep + 0.5) / size) if keep < size else 0.0
    return tp.pruner.MetaPruner(model, example_inputs, pruning_ratio=ratio, pruning_ratio_dict=ratios, **kwargs)


def prune_model(model: Any, ratio: float, example_inputs: torch.Tensor) -> tuple[int, int]:
    """One-shot structured pruning of ``model`` in place; returns (parameters before, after)."""
    if ratio <= 0:
        n = count_params(model)
        return n, n
    return StructuredPruner(model, ratio, example_inputs, steps=1).step()
