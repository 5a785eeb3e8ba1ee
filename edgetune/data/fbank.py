"""Kaldi-compatible log-mel filterbank features in numpy: the front end of every edgetune model.

These are the settings sherpa-onnx, icefall and WeNet feed their streaming models
(kaldi-native-fbank ``FbankOptions`` with ``dither=0``, ``snip_edges=False``,
``high_freq=-400``): 16 kHz samples in [-1, 1], 25 ms povey window every 10 ms, DC
removal, pre-emphasis 0.97, 512-point FFT, power spectrum, 80 triangular bins on Kaldi's mel
scale from 20 Hz to Nyquist - 400 Hz, ``log(max(energy, FLT_EPSILON))``.

:func:`compute_fbank` runs ``kaldi_native_fbank.OnlineFbank`` itself when the package is
installed (it is an edgetune dependency): then edgetune's features, and so its WER and parity
figures, are bit for bit what sherpa-onnx computes on a phone. Without it (a board with only
numpy and onnxruntime: this file imports nothing else, copy it beside
``edgetune/_runner.py``) it falls back to :func:`numpy_fbank`, a numpy port of the same
algorithm that agrees with the package to ~3e-6 on average and 2e-3 at worst (float32 rounding
in the package; tested). :class:`FeatureSpec` is the part of an exported model's metadata that
describes the features.

Frames (``snip_edges=False``): a wave of N samples gives ``(N + shift // 2) // shift``
frames; frame ``i`` is centred on sample ``i * shift + shift // 2`` and samples beyond either
end are reflected, as Kaldi's ``ExtractWindow`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: float32 machine epsilon: Kaldi floors mel energies here before the log
FLT_EPSILON = float(np.finfo(np.float32).eps)
KIND = "kaldi-fbank"

__all__ = ["FLT_EPSILON", "FeatureSpec", "backend", "compute_fbank", "numpy_fbank", "num_frames"]


@dataclass(frozen=True)
class FeatureSpec:
    """Kaldi fbank settings (kaldi-native-fbank's names); the defaults are sherpa-onnx's."""

    sample_rate: int = 16000
    n_mels: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    low_freq: float = 20.0
    high_freq: float = -400.0       # <= 0: offset from Nyquist, as in Kaldi
    preemph_coeff: float = 0.97
    remove_dc_offset: bool = True
    window_type: str = "povey"
    snip_edges: bool = False
    dither: float = 0.0
    kind: str = KIND

    def __post_init__(self) -> None:
        if self.kind != KIND:
            raise ValueError(f"feature kind must be {KIND!r}, but got {self.kind!r}; "
                             "this file was written by an edgetune older than the Kaldi fbank switch: re-export it")
        if self.window_type != "povey" or self.snip_edges or self.dither != 0.0:
            raise ValueError(f"only window_type='povey', snip_edges=False and dither=0 are implemented, "
                             f"but got {self.window_type!r}, {self.snip_edges!r}, {self.dither!r}")
        if self.sample_rate < 1000 or self.n_mels < 1:
            raise ValueError(f"sample_rate must be >= 1000 and n_mels >= 1, but got {self.sample_rate}, {self.n_mels}")

    @property
    def hop_length(self) -> int:
        """Samples between frames (160 at 16 kHz)."""
        return int(self.sample_rate * 0.001 * self.frame_shift_ms)

    @property
    def win_length(self) -> int:
        """Samples per analysis window (400 at 16 kHz)."""
        return int(self.sample_rate * 0.001 * self.frame_length_ms)

    @property
    def n_fft(self) -> int:
        """FFT size: the window rounded up to a power of two (512)."""
        return 1 << (self.win_length - 1).bit_length()

    @property
    def silence(self) -> float:
        """The feature value of digital silence, ``log(FLT_EPSILON)``: used to pad the last chunk."""
        return math.log(FLT_EPSILON)


def num_frames(n_samples: int, spec: FeatureSpec | None = None) -> int:
    """Frames for ``n_samples`` samples (Kaldi, ``snip_edges=False``)."""
    spec = spec or FeatureSpec()
    shift = spec.hop_length
    return (int(n_samples) + shift // 2) // shift


def _mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


@lru_cache(maxsize=8)
def _mel_banks(spec: FeatureSpec) -> np.ndarray:
    """``[n_fft // 2, n_mels]`` triangular filters over the FFT bins below Nyquist (Kaldi ``MelBanks``)."""
    nyquist = 0.5 * spec.sample_rate
    high = spec.high_freq if spec.high_freq > 0 else nyquist + spec.high_freq
    if not 0.0 <= spec.low_freq < high <= nyquist:
        raise ValueError(f"mel bins need 0 <= low_freq < high_freq <= Nyquist, but got low_freq={spec.low_freq}, "
                         f"high_freq={spec.high_freq} (= {high} Hz) at sample_rate={spec.sample_rate}")
    n_bins = spec.n_fft // 2
    mel = _mel(np.arange(n_bins) * spec.sample_rate / spec.n_fft)          # [n_bins]
    lo, hi = float(_mel(spec.low_freq)), float(_mel(high))
    delta = (hi - lo) / (spec.n_mels + 1)
    left = lo + delta * np.arange(spec.n_mels)
    center, right = left + delta, left + 2 * delta
    up = (mel[:, None] - left) / (center - left)
    down = (right - mel[:, None]) / (right - center)
    inside = (mel[:, None] > left) & (mel[:, None] < right)
    return np.where(inside, np.where(mel[:, None] <= center, up, down), 0.0)


@lru_cache(maxsize=8)
def _window(spec: FeatureSpec) -> np.ndarray:
    n = np.arange(spec.win_length)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / (spec.win_length - 1))) ** 0.85


def backend() -> str:
    """``kaldi-native-fbank`` when that package can be imported, else ``numpy``."""
    return "kaldi-native-fbank" if _knf() is not None else "numpy"


@lru_cache(maxsize=1)
def _knf():
    try:
        import kaldi_native_fbank
    except ImportError:
        return None
    return kaldi_native_fbank


def compute_fbank(wave: np.ndarray, spec: FeatureSpec | None = None) -> np.ndarray:
    """Log-mel fbank of a mono float wave ``[N]`` (samples in [-1, 1]) -> ``[frames, n_mels]`` float32,
    through kaldi-native-fbank when installed (sherpa-onnx's own numbers), else :func:`numpy_fbank`."""
    spec = spec or FeatureSpec()
    knf = _knf()
    if knf is None:
        return numpy_fbank(wave, spec)
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"compute_fbank expects a mono wave [N], but got shape {x.shape}")
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = spec.sample_rate
    opts.frame_opts.frame_length_ms = spec.frame_length_ms
    opts.frame_opts.frame_shift_ms = spec.frame_shift_ms
    opts.frame_opts.dither = spec.dither
    opts.frame_opts.preemph_coeff = spec.preemph_coeff
    opts.frame_opts.remove_dc_offset = spec.remove_dc_offset
    opts.frame_opts.window_type = spec.window_type
    opts.frame_opts.snip_edges = spec.snip_edges
    opts.mel_opts.num_bins = spec.n_mels
    opts.mel_opts.low_freq = spec.low_freq
    opts.mel_opts.high_freq = spec.high_freq
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(spec.sample_rate, x)
    fb.input_finished()
    n = fb.num_frames_ready
    if n == 0:
        return np.zeros((0, spec.n_mels), dtype=np.float32)
    return np.stack([np.asarray(fb.get_frame(i), dtype=np.float32) for i in range(n)])


def numpy_fbank(wave: np.ndarray, spec: FeatureSpec | None = None) -> np.ndarray:
    """The numpy port of kaldi-native-fbank's fbank (float64 inside): for machines without the package."""
    spec = spec or FeatureSpec()
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"numpy_fbank expects a mono wave [N], but got shape {x.shape}")
    frames = num_frames(x.size, spec)
    if frames == 0:
        return np.zeros((0, spec.n_mels), dtype=np.float32)
    shift, length, n = spec.hop_length, spec.win_length, x.size
    starts = np.arange(frames) * shift + shift // 2 - length // 2
    idx = starts[:, None] + np.arange(length)[None, :]
    # reflect out-of-range samples into the wave (repeatedly, for waves shorter than a window)
    while True:
        low, high = idx < 0, idx >= n
        if not (low.any() or high.any()):
            break
        idx = np.where(low, -idx - 1, np.where(high, 2 * n - 1 - idx, idx))
    w = x[idx]                                                              # [frames, length]
    if spec.remove_dc_offset:
        w = w - w.mean(axis=1, keepdims=True)
    if spec.preemph_coeff:
        w = np.concatenate([w[:, :1] * (1.0 - spec.preemph_coeff),
                            w[:, 1:] - spec.preemph_coeff * w[:, :-1]], axis=1)
    w = w * _window(spec)
    power = np.abs(np.fft.rfft(w, n=spec.n_fft, axis=1)) ** 2              # [frames, n_fft/2 + 1]
    energies = power[:, :spec.n_fft // 2] @ _mel_banks(spec)
    return np.log(np.maximum(energies, FLT_EPSILON)).astype(np.float32)
