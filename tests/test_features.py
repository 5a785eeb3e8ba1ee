"""Log-mel features: numpy vs torch parity, frame counts, SpecAugment, the on-disk cache, light imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edgetune.data import SPLITS, CorpusPreset, build_corpus, load_audio
from edgetune.data.features import (FeatureSpec, extract_features, log_mel_numpy, log_mel_torch, num_frames,
                                    spec_augment)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("feat") / "c"
    return build_corpus(CorpusPreset("feat", train=6, dev=2, test=4, shard_size=12), cache_dir=folder, seed=5,
                        progress=False)


def test_numpy_matches_torch_on_speech_and_noise(corpus):
    waves = [load_audio(u.audio_filepath) for s in SPLITS for u in corpus.split(s)]
    rng = np.random.default_rng(0)
    waves += [rng.uniform(-1, 1, 8000).astype(np.float32), 1e-5 * rng.standard_normal(3000).astype(np.float32),
              np.zeros(5000, np.float32)]
    for wave in waves:
        t = log_mel_torch(torch.from_numpy(wave)).numpy()
        n = log_mel_numpy(wave)
        assert t.shape == n.shape == (num_frames(wave.size), 80)
        assert n.dtype == np.float32 and t.dtype == np.float32
        assert np.abs(t - n).max() < 1e-3


def test_close_to_stock_torchaudio_melspectrogram(corpus):
    # the float64 front end is the documented FeatureSpec: stock float32 torchaudio agrees where it is precise
    import torchaudio

    spec = FeatureSpec()
    stock = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=400, win_length=400, hop_length=160,
                                                 f_min=0.0, f_max=8000.0, n_mels=80, power=2.0, center=False,
                                                 norm=None, mel_scale="htk")
    wave = torch.from_numpy(load_audio(corpus.train[0].audio_filepath))
    ref = torch.log(stock(wave) + spec.log_offset).T
    ours = log_mel_torch(wave, spec)
    diff = (ref - ours).abs()
    assert diff.shape == ours.shape
    assert diff.max() < 0.05 and (diff < 1e-3).float().mean() > 0.999


@pytest.mark.parametrize("n", [0, 1, 399, 400, 401, 559, 560, 16000])
def test_frame_count(n):
    wave = np.sin(np.arange(n) * 0.1).astype(np.float32)
    expected = 1 + max(0, n - 400) // 160
    assert num_frames(n) == expected
    assert log_mel_numpy(wave).shape == (expected, 80)
    assert log_mel_torch(torch.from_numpy(wave)).shape == (expected, 80)


def test_batched_torch_equals_one_by_one():
    rng = np.random.default_rng(1)
    batch = torch.from_numpy(rng.uniform(-0.5, 0.5, (3, 4000)).astype(np.float32))
    out = log_mel_torch(batch)
    assert out.shape == (3, num_frames(4000), 80)
    for i in range(3):
        assert torch.allclose(out[i], log_mel_torch(batch[i]), atol=1e-5)


def test_other_spec_is_honoured():
    spec = FeatureSpec(n_mels=40, hop_length=80, f_max=4000.0)
    wave = np.random.default_rng(2).uniform(-1, 1, 3200).astype(np.float32)
    t = log_mel_torch(torch.from_numpy(wave), spec).numpy()
    assert t.shape == (1 + (3200 - 400) // 80, 40)
    assert np.abs(t - log_mel_numpy(wave, spec)).max() < 1e-3


def test_spec_augment_masks_reproducibly_without_touching_global_rng():
    feats = torch.randn(200, 80) + 5
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = spec_augment(feats, torch.Generator().manual_seed(7))
    after = torch.rand(3)
    assert torch.equal(before, after)  # the global RNG stream is untouched
    b = spec_augment(feats, torch.Generator().manual_seed(7))
    c = spec_augment(feats, torch.Generator().manual_seed(8))
    assert a.shape == feats.shape and torch.equal(a, b) and not torch.equal(a, c)
    changed = (a != feats)
    assert 0 < changed.float().mean() < 0.6
    assert changed.all(dim=0).any() or changed.all(dim=1).any()  # whole bands or whole frames masked
    batch = spec_augment(torch.stack([feats, feats]), torch.Generator().manual_seed(7))
    assert batch.shape == (2, 200, 80) and not torch.equal(batch[0], batch[1])  # masks per item


def test_extract_features_caches_on_disk(corpus, tmp_path):
    utts = corpus.train + corpus.test
    first = extract_features(utts, cache_dir=tmp_path, progress=False)
    files = list(tmp_path.glob("logmel-*.npz"))
    assert len(files) == 1
    assert len(first) == len(utts)
    for u, f in zip(utts, first):
        assert f.dtype == torch.float32
        assert torch.allclose(f, log_mel_torch(torch.from_numpy(load_audio(u.audio_filepath))))
    with np.load(files[0], allow_pickle=False) as z:
        assert z["feats"].shape == (sum(f.shape[0] for f in first), 80)
    stamp = files[0].stat().st_mtime_ns
    again = extract_features(utts, cache_dir=tmp_path, progress=False)
    assert files[0].stat().st_mtime_ns == stamp
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    # another spec, or a changed audio file, is another cache entry
    extract_features(utts, spec=FeatureSpec(n_mels=40), cache_dir=tmp_path, progress=False)
    os.utime(utts[0].audio_filepath, ns=(stamp, stamp + 10**9))
    extract_features(utts, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("logmel-*.npz"))) == 3
    # a damaged cache file is recomputed, not trusted
    for f in tmp_path.glob("logmel-*.npz"):
        f.write_bytes(b"garbage")
    assert all(torch.equal(a, b) for a, b in zip(first, extract_features(utts, cache_dir=tmp_path, progress=False)))


def test_importing_edgetune_data_does_not_import_torch():
    code = ("import sys, edgetune.data, edgetune.data.features; "
            "heavy = [m for m in ('torch', 'torchaudio', 'onnxruntime', 'scipy.signal') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
