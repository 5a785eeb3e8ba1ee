"""A trial's candidate, derived from the base: prune to width, prune to sparsity, QAT, (then fine-tune with distillation).

Width and sparsity are both structured, importance-based channel pruning (torch-pruning,
``GroupMagnitudeImportance(p=2)`` over residual width, attention head dimensions, FFN and conv
channels; the CTC head's vocabulary is never pruned). The surviving weights are the base's own:
nothing is re-initialised. Width ``w`` first removes ``1 - w`` of every group's channels, then
sparsity ``s`` removes ``s`` of what is left, so a group keeps about ``w * (1 - s)`` of its
channels (each step rounded to multiples of 8, as :mod:`edgetune.train.pruning` does).
"""

from __future__ import annotations

from typing import Any

from edgetune.errors import ConfigError
from edgetune.knobs import Knobs


def prune_to_knobs(model: Any, knobs: Knobs) -> Any:
    """Prune a width-1.0 model in place to ``knobs.depth_multiplier``, then to ``knobs.sparsity``."""
    import torch

    from edgetune.train import prune_model

    if knobs.depth_multiplier > 1.0:
        raise ConfigError(f"a candidate derived from a base cannot be wider than it: depth_multiplier "
                          f"{knobs.depth_multiplier} > 1.0; fix: keep space.depth_multiplier <= 1.0")
    example = torch.zeros(1, 2 * model.chunk_frames, model.n_mels, device=next(model.parameters()).device)
    if knobs.depth_multiplier < 1.0:
        prune_model(model, 1.0 - knobs.depth_multiplier, example)
    if knobs.sparsity > 0:
        prune_model(model, knobs.sparsity, example)
    return model


def quantize_for_knobs(model: Any, knobs: Knobs, calibration: list[Any] | None, pad_value: float) -> Any:
    """Switch QAT on at the knobs' width, with activation observers calibrated on ``calibration`` examples."""
    from edgetune.model.quant import set_quant
    from edgetune.train import calibrate

    if knobs.bits == 32:
        return model
    head_bits = {name: 8 for name in model.edge_layers()} if knobs.bits == 4 else None
    set_quant(model, knobs.bits, observer=knobs.observer.value, head_bits=head_bits)
    if calibration:
        calibrate(model, calibration, pad_value=pad_value, batch_size=16)
    return model


def derive_model(base: Any, knobs: Knobs, calibration: list[Any] | None = None, pad_value: float = 0.0) -> Any:
    """The trial's candidate before fine-tuning: the base at the trial's chunk, pruned and quantized."""
    model = base.build(knobs.chunk_ms)
    prune_to_knobs(model, knobs)
    return quantize_for_knobs(model, knobs, calibration, pad_value)
