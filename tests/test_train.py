"""Training: pruning, QAT switching, reproducibility, early stop, NaN handling, schedules (tiny CPU runs)."""

from __future__ import annotations

import math

import pytest
import torch

from edgetune.errors import ConfigError, TrainingError
from edgetune.knobs import Knobs, TrainSettings
from edgetune.model import build_model
from edgetune.model.quant import ActQuant, quant_layers
from edgetune.train import StructuredPruner, count_params, prune_model, train_model
from edgetune.train._batching import bucket_batches, collate
from edgetune.train.trainer import lr_at, resolve_device

from _helpers import ARCH, SILENCE, VOCAB
from _helpers import train_data as _data


def _train(knobs: Knobs, settings: TrainSettings, **kw):
    torch.manual_seed(settings.seed)  # initialisation, as the pipeline does
    model = build_model("conformer_lite", knobs, ARCH)
    result = train_model(model, knobs, settings, _data(12), _data(4, seed=1), vocabulary=VOCAB,
                         pad_value=SILENCE, progress=False, **kw)
    return model, result


def test_pruning_removes_parameters_and_keeps_streaming_exact():
    torch.manual_seed(0)
    model = build_model("conformer_lite", Knobs(chunk_ms=160)).eval()
    before, after = prune_model(model, 0.5, torch.zeros(1, 32, model.n_mels))
    assert before == sum(p.numel() for p in build_model("conformer_lite", Knobs(chunk_ms=160)).parameters())
    assert after == count_params(model) < 0.5 * before
    assert model.subsample.out_channels % 8 == 0 and model.subsample.out_channels < 96
    assert model.head.out_features == 29  # the CTC head's outputs are never pruned
    feats = torch.randn(1, 5 * model.chunk_frames, model.n_mels)
    with torch.no_grad():
        assert (model(feats) - model.stream(feats)).abs().max().item() < 1e-4


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.9])
def test_pruning_ratios_give_smaller_models(ratio):
    torch.manual_seed(0)
    model = build_model("conformer_lite", Knobs())
    before, after = prune_model(model, ratio, torch.zeros(1, 64, model.n_mels))
    assert after < before
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 64, 80))).all()


def test_gradual_pruning_reaches_the_same_shapes_as_one_shot():
    torch.manual_seed(0)
    one = build_model("conformer_lite", Knobs())
    prune_model(one, 0.5, torch.zeros(1, 64, 80))
    grad = build_model("conformer_lite", Knobs())
    pruner = StructuredPruner(grad, 0.5, torch.zeros(1, 64, 80), steps=4)
    sizes = [pruner.step()[1] for _ in range(4)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]
    assert grad.describe()["layers"] == one.describe()["layers"]


def test_training_is_reproducible_and_learns():
    knobs = Knobs(bits=32, chunk_ms=160, specaugment=True, lr=3e-3)
    settings = TrainSettings(epochs=3, batch_size=4, seed=7, device="cpu")
    m1, r1 = _train(knobs, settings)
    m2, r2 = _train(knobs, settings)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    assert r1.history[-1]["train_loss"] < r1.history[0]["train_loss"]
    assert r1.epochs_run == 3 and r1.steps == 9 and r1.device == "cpu"


def test_qat_switches_on_for_the_last_fraction_and_pruning_happens():
    knobs = Knobs(bits=8, sparsity=0.5, chunk_ms=160, specaugment=False)
    settings = TrainSettings(epochs=4, batch_size=4, qat_fraction=0.5, prune_at=0.25, device="cpu")
    model, result = _train(knobs, settings)
    assert result.qat_start_step == 6 and result.prune_steps == [3]
    assert result.params_final < result.params_initial
    assert all(layer.weight_bits == 8 for layer in quant_layers(model))
    acts = [m for m in model.modules() if isinstance(m, ActQuant)]
    assert acts and all(m.enabled and bool(m.initialized) for m in acts)


def test_float_candidates_never_enable_quantizers():
    model, result = _train(Knobs(bits=32, chunk_ms=160), TrainSettings(epochs=1, batch_size=6, device="cpu"))
    assert result.qat_start_step is None
    assert not any(m.enabled for m in model.modules() if isinstance(m, ActQuant))


def test_on_epoch_false_stops_training_early_with_dev_metrics():
    seen = []

    def on_epoch(epoch, metrics):
        seen.append((epoch, metrics))
        return epoch < 2

    knobs = Knobs(bits=4, chunk_ms=160)
    model, result = _train(knobs, TrainSettings(epochs=5, batch_size=4, device="cpu"), on_epoch=on_epoch)
    assert [e for e, _ in seen] == [1, 2]
    assert result.stopped_early and result.epochs_run == 2
    assert {"wer", "worst_group_wer", "dev_loss", "train_loss"} <= set(seen[0][1])
    # stopped before QAT: the model is still turned into the candidate its knobs describe
    assert all(layer.weight_bits in (4, 8) for layer in quant_layers(model))


def test_nan_loss_raises_training_error_naming_the_step():
    data = _data(8)
    data[3].feats[0, 0] = float("nan")
    model = build_model("conformer_lite", Knobs(chunk_ms=160), ARCH)
    with pytest.raises(TrainingError, match=r"loss became NaN by step \d+"):
        train_model(model, Knobs(chunk_ms=160, specaugment=False), TrainSettings(epochs=1, batch_size=8, device="cpu"),
                    data, [], vocabulary=VOCAB, pad_value=SILENCE, progress=False)


def test_missing_cuda_is_an_error_not_a_silent_fallback():
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(s, 100, 1e-3) for s in range(100)]
    peak = lrs.index(max(lrs))
    assert 0 < peak < 20 and lrs[0] < lrs[peak] and lrs[-1] < 0.1 * lrs[peak]


def test_batches_cover_every_example_once_and_pad_to_whole_chunks():
    lengths = [50, 10, 33, 90, 12, 70, 41]
    batches = bucket_batches(lengths, 3, torch.Generator().manual_seed(0))
    assert sorted(i for b in batches for i in b) == list(range(7))
    data = _data(5)
    batch = collate(data, chunk_frames=16, subsampling=4, pad_value=SILENCE)
    assert batch.feats.shape[1] % 16 == 0
    for i, e in enumerate(data):
        assert batch.input_lengths[i] == math.ceil(e.frames / 16) * 4
        assert torch.all(batch.feats[i, e.frames:] == SILENCE)


@pytest.mark.gpu
def test_cuda_bf16_training_runs():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    model, result = _train(Knobs(bits=8, chunk_ms=160), TrainSettings(epochs=2, batch_size=4, device="cuda"))
    assert result.device.startswith("cuda") and math.isfinite(result.history[-1]["train_loss"])
    assert result.gpu_seconds == result.train_seconds > 0
    assert result.gpu_energy_j is None or result.gpu_energy_j >= 0


def test_cpu_training_spends_no_gpu_time():
    model, result = _train(Knobs(bits=32, chunk_ms=160), TrainSettings(epochs=1, batch_size=4, device="cpu"))
    assert result.gpu_seconds == 0.0 and result.gpu_energy_j is None and result.train_seconds > 0
