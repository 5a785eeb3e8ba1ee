"""Log-mel features, in torch (training, export) and in numpy (device-free clients), with the
same numbers; SpecAugment; and an on-disk feature cache.

Both compute in float64 and return float32. The front end is :class:`~edgetune.export.metadata.FeatureSpec`: power mel spectrogram with
torchaudio ``MelSpectrogram`` semantics (periodic Hann window, ``center=False``, HTK mel scale,
no filter normalisation), then ``log(x + log_offset)``. A wave of N samples gives
``1 + (N - n_fft) // hop`` frames; a wave shorter than ``n_fft`` is zero-padded to one frame.

torch and torchaudio are imported inside the functions that need them; :func:`log_mel_numpy`
needs only numpy.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgetune.data._audio import load_audio
from edgetune.data._manifest import Utterance
from edgetune.errors import DataError
from edgetune.export.metadata import FeatureSpec

if TYPE_CHECKING:
    import torch

__all__ = ["FeatureSpec", "extract_features", "log_mel_numpy", "log_mel_torch", "num_frames", "spec_augment"]

_CACHE_VERSION = 1


def num_frames(n_samples: int, spec: FeatureSpec | None = None) -> int:
    """Frames for ``n_samples`` (``center=False``; short inputs are padded to one frame)."""
    spec = spec or FeatureSpec()
    return 1 + max(0, n_samples - spec.n_fft) // spec.hop_length


def _check_spec(spec: FeatureSpec) -> None:
    if spec.window != "hann" or spec.center or spec.mel_scale != "htk":
        raise DataError(f"unsupported FeatureSpec {spec}: only window='hann', center=False, mel_scale='htk' "
                        "are implemented")


@lru_cache(maxsize=8)
def _mel_transform(spec: FeatureSpec, device: str = "cpu"):
    import torch
    import torchaudio

    _check_spec(spec)
    transform = torchaudio.transforms.MelSpectrogram(
        sample_rate=spec.sample_rate, n_fft=spec.n_fft, win_length=spec.win_length,
        hop_length=spec.hop_length, f_min=spec.f_min, f_max=spec.f_max, n_mels=spec.n_mels,
        window_fn=torch.hann_window, power=spec.power, center=False, norm=None, mel_scale=spec.mel_scale)
    # torchaudio builds window and filters in float32; use float64 ones (same formulas), so
    # that torch and numpy share them exactly.
    transform = transform.to(torch.float64)
    transform.spectrogram.window = torch.hann_window(spec.win_length, dtype=torch.float64)
    transform.mel_scale.fb = torch.from_numpy(mel_filterbank(spec).copy())
    return transform.to(device)  # one cached module per device: Module.to moves in place


def log_mel_torch(wave: "torch.Tensor", spec: FeatureSpec | None = None) -> "torch.Tensor":
    """Log-mel of a float wave ``[T]`` -> ``[frames, n_mels]`` (``[B, T]`` -> ``[B, frames, n_mels]``)."""
    import torch

    spec = spec or FeatureSpec()
    if wave.dim() not in (1, 2):
        raise DataError(f"log_mel_torch expects a wave [T] or [B, T], got shape {tuple(wave.shape)}")
    if wave.shape[-1] < spec.n_fft:
        wave = torch.nn.functional.pad(wave, (0, spec.n_fft - wave.shape[-1]))
    transform = _mel_transform(spec, str(wave.device))
    # float64 inside: in float32 the FFT's rounding noise (~1e-7 of a frame's peak) shows up in
    # quiet mel bins 15-20 nats below the peak, and numpy clients would then differ by > 1e-3.
    mel = transform(wave.to(torch.float64))  # [..., n_mels, frames]
    return torch.log(mel + spec.log_offset).to(torch.float32).transpose(-1, -2).contiguous()


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filterbank(spec: FeatureSpec) -> np.ndarray:
    """``[n_fft // 2 + 1, n_mels]`` triangular HTK filters, as torchaudio.functional.melscale_fbanks (norm=None)."""
    n_freqs = spec.n_fft // 2 + 1
    all_freqs = np.linspace(0, spec.sample_rate // 2, n_freqs)
    m_pts = np.linspace(_hz_to_mel(np.float64(spec.f_min)), _hz_to_mel(np.float64(spec.f_max)), spec.n_mels + 2)
    f_pts = _mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]  # [n_freqs, n_mels + 2]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up))


@lru_cache(maxsize=8)
def _window(spec: FeatureSpec) -> np.ndarray:
    n = np.arange(spec.win_length)
    win = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / spec.win_length)  # periodic Hann, like torch.hann_window
    left = (spec.n_fft - spec.win_length) // 2
    return np.pad(win, (left, spec.n_fft - spec.win_length - left))


def log_mel_numpy(wave: np.ndarray, spec: FeatureSpec | None = None) -> np.ndarray:
    """Log-mel of a float wave ``[T]`` -> ``[frames, n_mels]`` float32, numpy only (same numbers as torch)."""
    spec = spec or FeatureSpec()
    _check_spec(spec)
    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim != 1:
        raise DataError(f"log_mel_numpy expects a wave [T], got shape {wave.shape}")
    if wave.size < spec.n_fft:
        wave = np.pad(wave, (0, spec.n_fft - wave.size))
    frames = np.lib.stride_tricks.sliding_window_view(wave, spec.n_fft)[::spec.hop_length]
    spectrum = np.abs(np.fft.rfft(frames * _window(spec), axis=-1)) ** spec.power
    mel = spectrum @ mel_filterbank(spec)
    return np.log(mel + spec.log_offset).astype(np.float32)


def spec_augment(feats: "torch.Tensor", generator: "torch.Generator | None" = None, *,
                 freq_masks: int = 2, freq_width: int = 15, time_masks: int = 2, time_width: int = 25,
                 max_time_fraction: float = 0.2) -> "torch.Tensor":
    """SpecAugment for training: ``[frames, n_mels]`` or ``[B, frames, n_mels]`` -> same shape.

    torchaudio's ``SpecAugment`` (masks filled with the mean, independent per item). With a
    ``generator`` the masks are drawn from it (reproducible) without touching the global RNG.
    """
    import torch
    import torchaudio

    frames = feats.shape[-2]
    aug = torchaudio.transforms.SpecAugment(
        n_time_masks=time_masks, time_mask_param=max(1, min(time_width, int(frames * max_time_fraction))),
        n_freq_masks=freq_masks, freq_mask_param=freq_width, iid_masks=True, zero_masking=False)
    x = feats.transpose(-1, -2)  # torchaudio masks (..., freq, time)
    squeeze = x.dim() == 2
    if squeeze:
        x = x.unsqueeze(0)
    if generator is None:
        out = aug(x)
    else:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        devices = [feats.device.index or 0] if feats.is_cuda else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            out = aug(x)
    if squeeze:
        out = out.squeeze(0)
    return out.transpose(-1, -2).contiguous()


def _cache_key(utts: list[Utterance], spec: FeatureSpec) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"version": _CACHE_VERSION, "spec": asdict(spec)}, sort_keys=True).encode())
    for u in utts:
        try:
            st = os.stat(u.audio_filepath)
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = (-1, -1)
        h.update(json.dumps([u.audio_filepath, stamp]).encode())
    return h.hexdigest()[:24]


def extract_features(utts: list[Utterance], spec: FeatureSpec | None = None, cache_dir: Path | None = None,
                     progress: bool = True) -> list["torch.Tensor"]:
    """Log-mel ``[frames, n_mels]`` float32 tensors for ``utts``, cached on disk.

    The cache is one ``.npz`` per (list of files, their sizes and mtimes, spec) in
    ``cache_dir`` (default ``$EDGETUNE_CACHE/features``), holding all frames concatenated and
    the per-utterance offsets; it is written atomically and loaded with
    ``allow_pickle=False``. Utterances are computed in a thread pool with torch's intra-op
    threads set to 1 for the duration (restored afterwards).
    """
    import torch

    from edgetune.data._corpus import default_cache_root

    spec = spec or FeatureSpec()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_root() / "features"
    path = folder / f"logmel-{_cache_key(utts, spec)}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                feats, offsets = z["feats"], z["offsets"]
            if len(offsets) == len(utts) + 1:
                return [torch.from_numpy(feats[offsets[i]:offsets[i + 1]]) for i in range(len(utts))]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is recomputed and replaced

    from edgetune.data._corpus import _progress

    def one(u: Utterance) -> "torch.Tensor":
        feats = log_mel_torch(torch.from_numpy(load_audio(u.audio_filepath, spec.sample_rate)), spec)
        bar.advance(task)
        return feats

    # one utterance per thread, one torch thread each: intra-op threads only add overhead on
    # inputs this small (measured 2.3 ms per utterance with 1 thread vs ~30 ms with 2 on a busy 2-core machine)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _progress(progress and len(utts) > 0) as bar, \
                ThreadPoolExecutor(max_workers=max(1, min(threads, os.cpu_count() or 1))) as pool:
            task = bar.add_task("log-mel features", total=len(utts))
            out = list(pool.map(one, utts))
    finally:
        torch.set_num_threads(threads)
    feats = np.concatenate([f.numpy() for f in out]) if out else np.zeros((0, spec.n_mels), np.float32)
    offsets = np.cumsum([0] + [f.shape[0] for f in out]).astype(np.int64)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.{os.getpid()}.tmp.npz"
    np.savez(tmp, feats=feats, offsets=offsets)
    os.replace(tmp, path)
    return out
