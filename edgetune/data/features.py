"""Features for training and evaluation: Kaldi fbank (:mod:`edgetune.data.fbank`, numpy only),
SpecAugment, and an on-disk feature cache.

Every path that turns audio into model input (training, dev/test WER, parity, ``transcribe``,
the on-device runner) calls :func:`~edgetune.data.fbank.compute_fbank`, so they compute the
same numbers; a test holds them to ``kaldi_native_fbank`` (what sherpa-onnx runs) within 1e-4.
torch and torchaudio are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgetune._io import atomic_write
from edgetune.data._audio import load_audio
from edgetune.data._manifest import Utterance
from edgetune.data.fbank import FeatureSpec, backend, compute_fbank, num_frames

if TYPE_CHECKING:
    import torch

__all__ = ["FeatureSpec", "compute_fbank", "extract_features", "num_frames", "spec_augment"]

_CACHE_VERSION = 3  # 2: Kaldi fbank; 3: the implementation (kaldi-native-fbank or numpy) is part of the key


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
    h.update(json.dumps({"version": _CACHE_VERSION, "spec": asdict(spec), "backend": backend()},
                        sort_keys=True).encode())
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
    """Kaldi fbank ``[frames, n_mels]`` float32 tensors for ``utts``, cached on disk.

    The cache is one ``.npz`` per (list of files, their sizes and mtimes, spec) in
    ``cache_dir`` (default ``$EDGETUNE_CACHE/features``), holding all frames concatenated and
    the per-utterance offsets; it is written atomically and loaded with
    ``allow_pickle=False``. Sets of thousands of utterances are computed in worker processes.
    """
    import torch

    from edgetune.data._corpus import default_cache_root

    spec = spec or FeatureSpec()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_root() / "features"
    path = folder / f"fbank-{_cache_key(utts, spec)}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                feats, offsets = z["feats"], z["offsets"]
            if len(offsets) == len(utts) + 1:
                return [torch.from_numpy(feats[offsets[i]:offsets[i + 1]]) for i in range(len(utts))]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is recomputed and replaced

    from edgetune.data._corpus import _progress

    # the numpy fbank is mostly small array operations that hold the GIL: threads do not scale
    # (measured on the 16-core GPU machine: minutes for 26,000 utterances in two processes), so
    # large sets go to worker processes in shards; small ones are computed right here
    paths = [u.audio_filepath for u in utts]
    workers = min(_cores(), max(1, len(paths) // PER_PROCESS_MIN))
    out: list[np.ndarray] = []
    with _progress(progress and len(utts) > 0) as bar:
        task = bar.add_task("fbank features", total=len(utts))
        if workers <= 1:
            for p in paths:
                out.append(_fbank_file(p, spec))
                bar.advance(task)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            shards = [paths[i:i + SHARD] for i in range(0, len(paths), SHARD)]
            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
                for part in pool.map(_fbank_files, shards, [spec] * len(shards)):
                    out.extend(part)
                    bar.advance(task, len(part))
    feats = np.concatenate(out) if out else np.zeros((0, spec.n_mels), np.float32)
    offsets = np.cumsum([0] + [f.shape[0] for f in out]).astype(np.int64)
    atomic_write(path, lambda tmp: np.savez(tmp, feats=feats, offsets=offsets), suffix=".tmp.npz")
    return [torch.from_numpy(f) for f in out]


PER_PROCESS_MIN = 1000  # utterances per worker process below which processes do not pay off
SHARD = 250


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _fbank_file(path: str, spec: FeatureSpec) -> np.ndarray:
    return compute_fbank(load_audio(path, spec.sample_rate), spec)


def _fbank_files(paths: list[str], spec: FeatureSpec) -> list[np.ndarray]:
    return [_fbank_file(p, spec) for p in paths]
