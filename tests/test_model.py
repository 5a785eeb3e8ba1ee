"""Model families: registry, widths, streaming == full utterance, fake quantization grids."""

from __future__ import annotations

import pytest
import torch

from edgetune.errors import ConfigError
from edgetune.knobs import Knobs
from edgetune.model import ConformerLiteConfig, build_model, families, get_family, register_family
from edgetune.model.quant import WEIGHT_QMAX, freeze_quant, quant_layers, set_quant


def _calibrate(model, frames: int = 96) -> None:
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, frames, model.n_mels))
    model.eval()


def test_registry_lists_family_and_rejects_unknown_names():
    assert "conformer_lite" in families()
    with pytest.raises(ConfigError, match="conformer_lite"):
        get_family("nope")
    with pytest.raises(ConfigError, match="d_model"):
        build_model("conformer_lite", Knobs(), {"width": 3})


def test_a_second_family_registers_without_touching_the_pipeline():
    from dataclasses import dataclass

    from edgetune.model.conformer_lite import ConformerLite

    @dataclass(frozen=True)
    class WideConfig(ConformerLiteConfig):
        d_model: int = 48

    register_family("test_wide", WideConfig, lambda cfg, knobs: ConformerLite(cfg, knobs))
    model = build_model("test_wide", Knobs())
    assert model.subsample.out_channels == 48


@pytest.mark.parametrize("dm", [0.25, 0.5, 0.8, 1.0, 1.5])
def test_widths_are_multiples_of_8_and_heads_divide(dm):
    model = build_model("conformer_lite", Knobs(depth_multiplier=dm))
    d = model.subsample.out_channels
    assert d % 8 == 0
    for block in model.blocks:
        width = block.attn.qkv.out_features // 3
        assert width % block.attn.n_heads == 0 and (width // block.attn.n_heads) % 2 == 0
        assert block.ffn.fc1.out_features % 8 == 0


def test_default_size_fits_a_2_core_cpu():
    n = sum(p.numel() for p in build_model("conformer_lite", Knobs()).parameters())
    assert 100_000 <= n <= 400_000


def test_invalid_config_names_the_key():
    with pytest.raises(ConfigError, match="n_layers"):
        ConformerLiteConfig(n_layers=0)


@pytest.mark.parametrize("chunk_ms,dm,left_chunks", [(40, 0.5, 0), (160, 1.0, 0), (320, 0.5, 1), (640, 0.25, 2)])
def test_streaming_equals_full_utterance(chunk_ms, dm, left_chunks):
    torch.manual_seed(0)
    model = build_model("conformer_lite", Knobs(chunk_ms=chunk_ms, depth_multiplier=dm),
                        {"left_chunks": left_chunks}).eval()
    feats = torch.randn(1, model.chunk_frames * 5, model.n_mels)
    with torch.no_grad():
        full, streamed = model(feats), model.stream(feats)
    assert full.shape == streamed.shape == (1, model.chunk_frames * 5 // 4, 29)
    assert (full - streamed).abs().max().item() < 1e-4


def test_output_upsampling_streams_exactly_at_20ms():
    torch.manual_seed(0)
    model = build_model("conformer_lite", Knobs(chunk_ms=160), {"output_upsample": 2}).eval()
    assert model.subsampling == 2
    feats = torch.randn(1, model.chunk_frames * 4, model.n_mels)
    with torch.no_grad():
        full, streamed = model(feats), model.stream(feats)
    assert full.shape == (1, model.chunk_frames * 4 // 2, 29)
    assert (full - streamed).abs().max().item() < 1e-4


def test_left_context_is_bounded():
    """Changing features more than left_chunks chunks back must not change the current chunk's output."""
    torch.manual_seed(0)
    model = build_model("conformer_lite", Knobs(chunk_ms=160), {"left_chunks": 1, "n_layers": 1}).eval()
    c = model.chunk_frames
    a = torch.randn(1, 6 * c, model.n_mels)
    b = a.clone()
    b[:, :c] += 3.0  # chunk 0 differs; chunk 5 attends to chunks 4-5, whose conv reaches back 6 frames
    with torch.no_grad():
        out_a, out_b = model(a), model(b)
    assert torch.allclose(out_a[:, 5 * c // 4:], out_b[:, 5 * c // 4:], atol=1e-6)
    assert not torch.allclose(out_a[:, : c // 4], out_b[:, : c // 4])


def test_future_frames_do_not_leak_into_earlier_chunks():
    torch.manual_seed(0)
    model = build_model("conformer_lite", Knobs(chunk_ms=160)).eval()
    c = model.chunk_frames
    a = torch.randn(1, 3 * c, model.n_mels)
    b = a.clone()
    b[:, 2 * c:] = 0.0
    with torch.no_grad():
        assert torch.allclose(model(a)[:, : 2 * c // 4], model(b)[:, : 2 * c // 4], atol=1e-6)


@pytest.mark.parametrize("bits", [8, 4])
def test_frozen_weights_lie_on_the_declared_grid(bits):
    torch.manual_seed(0)
    model = build_model("conformer_lite", Knobs(bits=bits))
    set_quant(model, bits, head_bits={n: 8 for n in model.edge_layers()} if bits == 4 else None)
    _calibrate(model)
    freeze_quant(model)
    edge = {id(getattr(model, n)) for n in model.edge_layers()}
    for layer in quant_layers(model):
        qmax = WEIGHT_QMAX[8 if (bits == 4 and id(layer) in edge) else bits]
        q = layer.weight / layer.weight_scale_frozen.view(-1, *([1] * (layer.weight.dim() - 1)))
        assert torch.allclose(q, q.round(), atol=1e-3)
        assert q.abs().max().item() <= qmax + 1e-3
        assert q.abs().max().item() >= qmax - 1e-3  # symmetric per-channel: the max hits the grid end


def test_quantized_model_still_streams_like_full():
    torch.manual_seed(0)
    model = build_model("conformer_lite", Knobs(bits=8, chunk_ms=160))
    set_quant(model, 8)
    _calibrate(model)
    freeze_quant(model)
    feats = torch.randn(1, model.chunk_frames * 4, model.n_mels)
    with torch.no_grad():
        diff = (model(feats) - model.stream(feats)).abs().max().item()
    out_scale = model.head.output_quant.frozen[0]
    assert diff <= 2 * out_scale + 1e-5  # at most a rounding flip at a quantizer boundary


def test_quantizers_are_identity_until_qat_is_switched_on():
    torch.manual_seed(0)
    model = build_model("conformer_lite", Knobs()).eval()
    feats = torch.randn(1, 64, model.n_mels)
    with torch.no_grad():
        before = model(feats)
        set_quant(model, 32)
        assert torch.equal(before, model(feats))
