"""Kaldi fbank features: numpy port vs kaldi-native-fbank, frame counts, SpecAugment, the on-disk cache, light imports."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from edgetune.data import SPLITS, CorpusPreset, build_corpus, load_audio
from edgetune.data.fbank import FeatureSpec, backend, compute_fbank, num_frames, numpy_fbank
from edgetune.data.features import extract_features, spec_augment


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("feat") / "c"
    return build_corpus(CorpusPreset("feat", train=6, dev=2, test=4, shard_size=12), cache_dir=folder, seed=5,
                        progress=False)


def test_numpy_fbank_matches_kaldi_native_fbank(corpus):
    """99 % of all values within 1e-4 (mean within 1e-5), every one within 2e-3. knf computes in float32, whose
    FFT rounding (about 1e-7 of a frame's energy) reaches 1e-4 to 1e-3 nats in the quietest bins of a
    frame; the numpy port computes in float64."""
    pytest.importorskip("kaldi_native_fbank")
    assert backend() == "kaldi-native-fbank"
    waves = [load_audio(u.audio_filepath) for s in SPLITS for u in corpus.split(s)]
    rng = np.random.default_rng(0)
    waves += [rng.uniform(-1, 1, 8000).astype(np.float32), 1e-3 * rng.standard_normal(3000).astype(np.float32),
              np.zeros(5000, np.float32), rng.uniform(-1, 1, 250).astype(np.float32)]
    for spec in (FeatureSpec(), FeatureSpec(n_mels=40, high_freq=6000.0, low_freq=60.0)):
        diffs = []
        for wave in waves:
            ours, ref = numpy_fbank(wave, spec), compute_fbank(wave, spec)  # compute_fbank: the package itself
            assert ours.shape == ref.shape == (num_frames(wave.size, spec), spec.n_mels)
            diffs.append(np.abs(ours - ref).ravel())
        diff = np.concatenate(diffs)
        # measured on eSpeak speech: mean ~3e-6, 99.9 % <= 2e-4, max 1.05e-3 (float32 rounding in knf)
        assert diff.mean() <= 1e-5 and np.quantile(diff, 0.99) <= 1e-4 and diff.max() <= 2e-3, \
            (diff.mean(), np.quantile(diff, 0.99), diff.max())


def test_silence_is_the_log_floor_and_frame_counts():
    spec = FeatureSpec()
    assert backend() == "kaldi-native-fbank"  # an edgetune dependency: training and WER use sherpa's numbers
    for fbank in (compute_fbank, numpy_fbank):
        assert np.allclose(fbank(np.zeros(1600, np.float32)), spec.silence)
        for n, frames in [(0, 0), (79, 0), (80, 1), (160, 1), (240, 2), (16000, 100), (16079, 100), (16080, 101)]:
            assert num_frames(n) == frames
            assert fbank(np.ones(n, np.float32) * 0.1).shape == (frames, 80)


def test_feature_spec_rejects_settings_it_does_not_implement():
    with pytest.raises(ValueError, match="snip_edges"):
        FeatureSpec(snip_edges=True)
    with pytest.raises(ValueError, match="re-export"):
        FeatureSpec(kind="log-mel")


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
    files = list(tmp_path.glob("fbank-*.npz"))
    assert len(files) == 1
    assert len(first) == len(utts)
    for u, f in zip(utts, first):
        assert f.dtype == torch.float32
        assert np.array_equal(f.numpy(), compute_fbank(load_audio(u.audio_filepath)))
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
    assert len(list(tmp_path.glob("fbank-*.npz"))) == 3
    # a damaged cache file is recomputed, not trusted
    for f in tmp_path.glob("fbank-*.npz"):
        f.write_bytes(b"garbage")
    assert all(torch.equal(a, b) for a, b in zip(first, extract_features(utts, cache_dir=tmp_path, progress=False)))
