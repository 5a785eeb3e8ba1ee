"""The training step's speed-ups (issue 13) change no numbers on CPU; a compiled forward matches eager."""

from __future__ import annotations


import pytest
import torch

from edgetune.knobs import Knobs, TrainSettings
from edgetune.model import build_model
from edgetune.model.quant import ActQuant, set_quant
from edgetune.train import train_model
from edgetune.train._batching import collate, collate_gathered
from edgetune.train._fast import FastPath, Forward, lr_for_batch

from _helpers import ARCH, SILENCE, VOCAB
from _helpers import train_data as _data


@pytest.mark.parametrize("observer", ["minmax", "moving_average"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sync_free_observer_gives_the_same_range_and_outputs(observer, dtype):
    g = torch.Generator().manual_seed(0)
    fast, slow = ActQuant(observer), ActQuant(observer)
    slow.sync_free = False
    for q in (fast, slow):
        q.enabled = True
    for step in range(6):
        x = (torch.randn(3, 17, 8, generator=g) * (1 + step) + step - 2).to(dtype)
        y_fast, y_slow = fast(x), slow(x)
        assert torch.equal(y_fast, y_slow)
        assert torch.equal(fast.min_val, slow.min_val) and torch.equal(fast.max_val, slow.max_val)
    assert bool(fast.initialized) and float(fast.min_val) < 0 < float(fast.max_val)


def test_gathered_batch_equals_the_per_utterance_copy():
    examples = _data(7)
    for chunk_frames, subsampling in ((16, 4), (32, 2)):
        a = collate(examples, chunk_frames, subsampling, SILENCE)
        b = collate_gathered(examples, chunk_frames, subsampling, SILENCE)
        for name in ("feats", "input_lengths", "targets", "target_lengths"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name
        assert a.texts == b.texts


def _train(fast: FastPath, bits: int = 8):
    torch.manual_seed(0)
    knobs = Knobs(bits=bits, chunk_ms=160, specaugment=False)
    model = build_model("conformer_lite", knobs, ARCH)
    result = train_model(model, knobs, TrainSettings(epochs=2, batch_size=4, device="cpu", qat_fraction=0.5),
                         _data(12), _data(4, seed=1), vocabulary=VOCAB, pad_value=SILENCE, progress=False,
                         fast=fast)
    return model.state_dict(), result


def test_cpu_fast_path_trains_bit_identically_to_the_old_step():
    base_state, base = _train(FastPath.off())
    for fast in (FastPath(), FastPath(async_batches=True)):
        state, result = _train(fast)
        assert [h["train_loss"] for h in result.history] == [h["train_loss"] for h in base.history]
        assert all(torch.equal(state[k], base_state[k]) for k in base_state), fast
    assert base.qat_start_step is not None  # the observers were part of the run


def test_a_failing_compile_falls_back_to_eager_with_the_same_result(monkeypatch):
    eager_state, _ = _train(FastPath(), bits=32)

    def broken_compile(fn, **kwargs):
        def run(*args, **kw):
            raise RuntimeError("no compiler here")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning, match="eager"):
        state, _ = _train(FastPath(compile=True), bits=32)
    assert all(torch.equal(state[k], eager_state[k]) for k in eager_state)


def test_lr_for_batch_follows_the_square_root_rule_and_its_cap():
    assert lr_for_batch(3e-3, 32) == pytest.approx(3e-3)
    assert lr_for_batch(1e-3, 128) == pytest.approx(2e-3)
    assert lr_for_batch(1e-3, 8) == pytest.approx(5e-4)
    assert lr_for_batch(3e-3, 4096) == pytest.approx(1e-2)  # capped
    assert lr_for_batch(2e-2, 512) == pytest.approx(2e-2)   # never lowered by the cap
    with pytest.raises(ValueError, match="batch_size=0"):
        lr_for_batch(1e-3, 0)


@pytest.mark.slow
def test_compiled_forward_and_gradients_match_eager():
    torch.manual_seed(0)
    model = build_model("conformer_lite", Knobs(chunk_ms=160), {**ARCH, "dropout": 0.0}).train()
    set_quant(model, 8)
    for m in model.modules():
        if isinstance(m, ActQuant):
            m.observer = "minmax"   # a range that stays put once it has seen both inputs
    x = torch.randn(2, 64, 80)
    with torch.no_grad():
        model(x)                    # observers initialised, so both paths see the same ranges
    eager = model(x, None)
    eager.square().mean().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    forward = Forward(model, compile=True)
    compiled = forward(x, None)
    compiled.square().mean().backward()
    assert forward.error is None and forward.active
    assert (compiled - eager).abs().max().item() < 1e-4
    for g_eager, p in zip(grads, model.parameters()):
        assert (p.grad - g_eager).abs().max().item() < 1e-4 * max(1.0, g_eager.abs().max().item())
