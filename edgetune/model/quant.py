"""Fake-quantized building blocks for quantization-aware training (QAT) and QDQ export.

Hand-written straight-through fake quantization (``torch.ao.quantization`` is deprecated):

- weights: per-output-channel symmetric, ``torch.fake_quantize_per_channel_affine`` on the
  grid ``[-qmax, qmax]``. 8-bit candidates use the reduced grid ``qmax = 63`` (7 bits, ORT's
  ``reduce_range`` idea): ONNX Runtime's u8s8 kernels on AVX2 CPUs without VNNI saturate on
  full-range int8 weights and then disagree with PyTorch. 4-bit candidates use ``qmax = 7``
  on the int8 carrier; the exporter stores them as INT4.
- activations: per-tensor asymmetric uint8 (ORT's fast x86 path), on the **input and the
  output** of every conv/linear, so ONNX Runtime fuses each one into an integer kernel.
  The range comes from an observer (min/max, or a moving average of them) while training,
  and is frozen to Python numbers before export.
- 16-bit candidates round weights to float16 (straight-through) during the QAT phase, so
  the model is trained for the precision it is exported at.

The layers are plain ``nn.Linear`` / ``nn.Conv1d`` subclasses, so torch-pruning prunes them
like any other layer; per-channel weight scales are recomputed from the weight on every call
and survive pruning.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

#: weight grid half-width per bit width; 8 bits uses 7-bit weights (see module docstring)
WEIGHT_QMAX = {8: 63, 4: 7}
ACT_QMIN, ACT_QMAX = 0, 255  # uint8 asymmetric activations


class ActQuant(nn.Module):
    """Per-tensor asymmetric uint8 fake quantization of an activation, with its range observer.

    Disabled (identity) until :func:`set_quant` switches QAT on. While training it updates
    ``min_val``/``max_val`` from each batch: ``minmax`` keeps the running extremes,
    ``moving_average`` an exponential average (momentum 0.01, like PyTorch's default).
    :meth:`freeze` turns the range into Python numbers so export writes constants.
    """

    def __init__(self, observer: str = "moving_average", momentum: float = 0.01) -> None:
        super().__init__()
        self.enabled = False
        self.observer = observer
        self.momentum = momentum
        self.frozen: tuple[float, int] | None = None
        self.register_buffer("min_val", torch.tensor(0.0))
        self.register_buffer("max_val", torch.tensor(0.0))
        self.register_buffer("initialized", torch.tensor(False))

    #: update the range with tensor ops only (``torch.where`` on ``initialized``): no GPU->host
    #: sync per quantizer per step. Same numbers as the branching path (False), kept to measure it.
    sync_free: bool = True

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        if not self.sync_free:
            return self._observe_branching(x)
        lo, hi = torch.aminmax(x.detach())           # exact in the input's dtype: no float32 copy of x
        lo, hi = lo.float(), hi.float()
        if self.observer == "minmax":
            new_lo, new_hi = torch.minimum(self.min_val, lo), torch.maximum(self.max_val, hi)
        else:
            new_lo, new_hi = self.min_val.lerp(lo, self.momentum), self.max_val.lerp(hi, self.momentum)
        self.min_val.copy_(torch.where(self.initialized, new_lo, lo))
        self.max_val.copy_(torch.where(self.initialized, new_hi, hi))
        self.initialized.fill_(True)

    def _observe_branching(self, x: torch.Tensor) -> None:
        """The original observer: ``bool(self.initialized)`` waits for the device on every call."""
        lo, hi = x.detach().float().amin(), x.detach().float().amax()
        if not bool(self.initialized):
            self.min_val.copy_(lo)
            self.max_val.copy_(hi)
            self.initialized.fill_(True)
        elif self.observer == "minmax":
            self.min_val.copy_(torch.minimum(self.min_val, lo))
            self.max_val.copy_(torch.maximum(self.max_val, hi))
        else:
            self.min_val.lerp_(lo, self.momentum)
            self.max_val.lerp_(hi, self.momentum)

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale (float32) and zero point (int32) of the observed range, which always includes 0."""
        lo = torch.clamp(self.min_val, max=0.0)
        hi = torch.clamp(self.max_val, min=0.0)
        scale = torch.clamp((hi - lo) / (ACT_QMAX - ACT_QMIN), min=1e-8)
        zero_point = torch.clamp(torch.round(ACT_QMIN - lo / scale), ACT_QMIN, ACT_QMAX).to(torch.int32)
        return scale.reshape(1).float(), zero_point.reshape(1)

    def freeze(self) -> None:
        scale, zero_point = self.qparams()
        self.frozen = (float(scale), int(zero_point))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        if self.frozen is not None:
            scale, zero_point = self.frozen
            return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, ACT_QMIN, ACT_QMAX)
        if self.training:
            self.observe(x)
        scale, zero_point = self.qparams()
        return torch.fake_quantize_per_tensor_affine(x.float(), scale, zero_point, ACT_QMIN, ACT_QMAX)

    def extra_repr(self) -> str:
        return f"enabled={self.enabled}, observer={self.observer}, frozen={self.frozen}"


class _QuantMixin:
    """Weight fake quantization shared by :class:`QLinear` and :class:`QConv1d`.

    ``weight_bits``: 32 = float, 16 = float16 rounding, 8/4 = integer grid. ``quantize_io``
    adds the input/output activation quantizers (integer candidates only).
    """

    weight: nn.Parameter
    weight_bits: int
    input_quant: ActQuant
    output_quant: ActQuant

    def _init_quant(self) -> None:
        self.weight_bits = 32
        self.weight_scale_frozen: torch.Tensor | None = None
        self.input_quant = ActQuant()
        self.output_quant = ActQuant()

    def weight_scale(self, weight: torch.Tensor, axis: int) -> torch.Tensor:
        """Per-channel symmetric scale along ``axis`` (max |w| / qmax), from the detached weight."""
        dims = [d for d in range(weight.dim()) if d != axis]
        amax = weight.detach().float().abs().amax(dim=dims)
        return torch.clamp(amax / WEIGHT_QMAX[self.weight_bits], min=1e-8)

    def quant_weight(self, weight: torch.Tensor, axis: int) -> torch.Tensor:
        """The weight as the forward pass sees it (fake-quantized, straight-through gradient)."""
        bits = self.weight_bits
        if bits == 32:
            return weight
        if bits == 16:
            return weight + (weight.half().float() - weight).detach()
        zeros = torch.zeros(weight.shape[axis], dtype=torch.int32, device=weight.device)
        if self.weight_scale_frozen is not None:
            # export: the weight already lies on the grid; the wide range only changes what
            # the exporter writes (int8 QuantizeLinear), not a single value
            # (a plain attribute, not a buffer: follow the weight when the model moves between devices)
            scale = self.weight_scale_frozen.to(weight.device)
            return torch.fake_quantize_per_channel_affine(weight, scale, zeros, axis, -128, 127)
        qmax = WEIGHT_QMAX[bits]
        scale = self.weight_scale(weight, axis)
        return torch.fake_quantize_per_channel_affine(weight.float(), scale, zeros, axis, -qmax, qmax)

    @torch.no_grad()
    def freeze_weight(self) -> None:
        """Snap the stored weight onto its grid and fix the scale, ready for export.

        The output channel is axis 0 of the stored weight for both layers (``QLinear``
        quantizes ``W^T`` along axis 1: the same channels, the same scales).
        """
        if self.weight_bits in (32, 16):
            if self.weight_bits == 16:
                self.weight.copy_(self.weight.half().float())
            return
        scale = self.weight_scale(self.weight, 0)
        self.weight.copy_(self.quant_weight(self.weight, 0))
        self.weight_scale_frozen = scale


class QLinear(nn.Linear, _QuantMixin):
    """``nn.Linear`` with fake-quantized weight, input and output.

    Computes ``x @ W^T`` as a MatMul against the transposed weight, quantized per output
    channel along axis 1, so the export holds ``DequantizeLinear(W^T) -> MatMul`` directly
    (no Transpose between them, which ONNX Runtime's QDQ fusion needs).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self._init_quant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_quant(x)
        w_t = self.quant_weight(self.weight.t(), axis=1)
        y = torch.matmul(x, w_t)
        if self.bias is not None:
            y = y + self.bias
        return self.output_quant(y)


class QConv1d(nn.Conv1d, _QuantMixin):
    """``nn.Conv1d`` (no padding of its own: callers pad causally) with fake-quantized weight, input and output."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=bias)
        self._init_quant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_quant(x)
        w = self.quant_weight(self.weight, axis=0)
        y = F.conv1d(x, w, self.bias, self.stride, 0, self.dilation, self.groups)
        return self.output_quant(y)


QUANT_LAYERS = (QLinear, QConv1d)


def quant_layers(model: nn.Module) -> Iterator[QLinear | QConv1d]:
    for m in model.modules():
        if isinstance(m, QUANT_LAYERS):
            yield m


def set_quant(model: nn.Module, bits: int, *, observer: str = "moving_average",
              head_bits: dict[str, int] | None = None) -> None:
    """Switch QAT on for weight width ``bits`` (4/8 integer, 16 float16, 32 = off).

    Integer widths also enable the uint8 activation quantizers. ``head_bits`` maps module
    names (as in ``named_modules``) to a different weight width, e.g. keeping the first and
    last layers of a 4-bit model at 8 bits.
    """
    head_bits = head_bits or {}
    for name, m in model.named_modules():
        if not isinstance(m, QUANT_LAYERS):
            continue
        m.weight_bits = head_bits.get(name, bits)
        integer = bits in WEIGHT_QMAX
        for q in (m.input_quant, m.output_quant):
            q.enabled = integer
            q.observer = observer


def freeze_quant(model: nn.Module) -> None:
    """Freeze every quantizer (activation ranges to Python numbers, weights onto their grid) for export.

    Raises ValueError if an enabled activation quantizer never observed data (calibrate first).
    """
    for name, m in model.named_modules():
        if isinstance(m, ActQuant) and m.enabled and m.frozen is None:
            if not bool(m.initialized):
                raise ValueError(f"activation quantizer {name} has observed no data; calibrate before export")
            m.freeze()
        if isinstance(m, QUANT_LAYERS):
            m.freeze_weight()
