"""Reading audio: any format libsndfile reads (WAV, FLAC, OGG, ...), any rate, any channels.

Audio comes back as float32 mono in [-1, 1] at the requested rate: channels are averaged
(downmix), then the signal is resampled with a polyphase filter (the one
``scipy.signal.resample_poly`` uses: Kaiser window, beta 5), giving
``ceil(n * target / source)`` samples. numpy and soundfile only, no torch, so clients
without torch can use it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from math import gcd

import numpy as np

from edgetune._io import atomic_write
from edgetune.errors import DataError


@lru_cache(maxsize=16)
def _polyphase_filter(up: int, down: int) -> tuple[np.ndarray, int]:
    """Kaiser-windowed sinc low-pass as scipy.signal.resample_poly designs it, split into ``up`` phases."""
    max_rate = max(up, down)
    half_len = 10 * max_rate
    m = np.arange(2 * half_len + 1) - half_len
    h = np.sinc(m / max_rate) / max_rate * np.kaiser(2 * half_len + 1, 5.0)
    h = h / h.sum() * up
    pre_pad = down - half_len % down  # puts output sample 0 at the filter's centre (scipy's alignment)
    h = np.concatenate([np.zeros(pre_pad), h])
    taps = -(-len(h) // up)
    h = np.concatenate([h, np.zeros(taps * up - len(h))])
    return h.reshape(taps, up).T.copy(), (half_len + pre_pad) // down  # [up, taps], outputs to skip


def resample(wave: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a 1-D signal from ``orig_rate`` to ``new_rate`` Hz; float32 of ``ceil(n * new / orig)`` samples.

    The same polyphase anti-aliasing filter and alignment as ``scipy.signal.resample_poly``
    (Kaiser window, beta 5), in numpy, so that the corpus workers need not import scipy.signal
    (over a second per process).
    """
    if orig_rate <= 0 or new_rate <= 0:
        raise DataError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
    wave = np.asarray(wave)
    if orig_rate == new_rate or wave.size == 0:
        return wave.astype(np.float32, copy=False)
    g = gcd(int(orig_rate), int(new_rate))
    up, down = int(new_rate) // g, int(orig_rate) // g
    phases, skip = _polyphase_filter(up, down)
    taps = phases.shape[1]
    n_out = -(-wave.size * up // down)
    x = np.concatenate([np.zeros(taps - 1), wave.astype(np.float64), np.zeros(taps)])
    out = np.empty(n_out, dtype=np.float64)
    j = np.arange(taps)
    for start in range(0, n_out, 8192):  # chunks bound the gather matrix to 8192 x taps
        t = (np.arange(start, min(start + 8192, n_out)) + skip) * down  # positions in the upsampled signal
        last = t // up  # newest input sample under the filter
        idx = np.minimum(last[:, None] - j[None, :] + taps - 1, x.size - 1)
        out[start:start + t.size] = np.einsum("nj,nj->n", x[idx], phases[t % up])
    return out.astype(np.float32)


def _read(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    import soundfile as sf

    if not os.path.exists(path):
        raise DataError(f"audio file {path} is missing; fix the path in the manifest or restore the file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError ...
        raise DataError(f"audio file {path} is unreadable ({exc}); re-create or re-download it") from None
    return data, int(rate)


def load_audio(path: str | os.PathLike, sample_rate: int = 16000) -> np.ndarray:
    """Float32 mono samples in [-1, 1] at ``sample_rate``; DataError naming the file if it cannot be read."""
    data, rate = _read(path)
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(mono)):
        raise DataError(f"audio file {path} holds NaN or infinite samples; re-create it")
    out = resample(mono, rate, sample_rate)
    return np.clip(out, -1.0, 1.0).astype(np.float32, copy=False)


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds from the file header (fast: decodes nothing)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise DataError(f"audio file {path} is unreadable ({exc}); re-create or re-download it") from None
    return info.frames / float(info.samplerate)


def audio_info_rate(path: str | os.PathLike) -> int:
    """The file's own sample rate from its header (DataError naming the file if unreadable)."""
    import soundfile as sf

    try:
        return int(sf.info(str(path)).samplerate)
    except Exception as exc:
        raise DataError(f"audio file {path} is unreadable ({exc}); re-create or re-download it") from None


def write_wav(path: str | os.PathLike, wave: np.ndarray, sample_rate: int = 16000) -> None:
    """Write 16-bit PCM WAV atomically (:func:`edgetune._io.atomic_write`)."""
    import soundfile as sf

    atomic_write(path, lambda tmp: sf.write(str(tmp), wave, sample_rate, subtype="PCM_16", format="WAV"))
