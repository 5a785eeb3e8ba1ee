"""The data stage: corpora, manifests, audio, text and log-mel features.

- :func:`load_dataset` is the entry point: ``"smoke"``/``"full"``/``"tiny"`` build (or load
  from cache) the built-in eSpeak corpus (:func:`build_corpus`); a folder with
  ``train.jsonl``/``dev.jsonl``/``test.jsonl`` or in LibriSpeech layout is read as is.
- :func:`validate_dataset` checks every audio file up front.
- Text: :data:`VOCABULARY`, :func:`normalize_text`, :func:`encode`, :func:`decode`.
- Features live in :mod:`edgetune.data.features` (imports torch when called); this package
  itself imports neither torch nor torchaudio.
"""

from edgetune.data._audio import load_audio, resample
from edgetune.data._corpus import PRESETS, CorpusPreset, build_corpus, default_cache_root
from edgetune.data._datasets import load_dataset, validate_dataset
from edgetune.data._manifest import SPLITS, DatasetSplits, Utterance, read_manifest, write_manifest
from edgetune.data._text import (BLANK_ID, VOCABULARY, count_unknown_chars, decode, encode, normalize_text,
                                 unknown_chars)


def __getattr__(name: str):
    # features pull in torch: import them on first use (edgetune.data.log_mel_torch, ...)
    if name in _FEATURE_NAMES:
        from edgetune.data import features

        return getattr(features, name)
    raise AttributeError(f"module 'edgetune.data' has no attribute {name!r}")


_FEATURE_NAMES = ("FeatureSpec", "log_mel_torch", "log_mel_numpy", "spec_augment", "extract_features", "num_frames")

__all__ = [
    "BLANK_ID", "PRESETS", "SPLITS", "VOCABULARY", "CorpusPreset", "DatasetSplits", "Utterance",
    "build_corpus", "count_unknown_chars", "decode", "default_cache_root", "encode", "load_audio",
    "load_dataset", "normalize_text", "read_manifest", "resample", "unknown_chars", "validate_dataset",
    "write_manifest", *_FEATURE_NAMES,
]
